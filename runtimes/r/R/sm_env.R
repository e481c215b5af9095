# The training toolkit's environment (E-01..E-11) for user code that expects SM_* vars.
# Values are strings; lists and dicts are JSON (C-07), as sagemaker-training writes them.

#' Set the SM_* variables for the training process.
#' @param hps typed hyperparameters (named list).
#' @param channels named character vector of channel directories.
#' @keywords internal
set_toolkit_env <- function(hps, channels) {
  json <- function(x) as.character(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null"))
  resource <- read_json_file(ml_path("input", "config", "resourceconfig.json")) %||%
    list(current_host = "algo-1", hosts = list("algo-1"), network_interface_name = "eth0")
  data_config <- read_json_file(ml_path("input", "config", "inputdataconfig.json")) %||% structure(list(), names = character(0))
  vars <- list(
    SM_MODEL_DIR = model_dir(),
    SM_CHANNELS = json(I(sort(names(channels)))),
    SM_HPS = json(if (length(hps)) hps else structure(list(), names = character(0))),
    SM_OUTPUT_DATA_DIR = ml_path("output", "data"),
    SM_OUTPUT_DIR = ml_path("output"),
    SM_INPUT_DIR = ml_path("input"),
    SM_INPUT_CONFIG_DIR = ml_path("input", "config"),
    SM_NUM_CPUS = as.character(parallel::detectCores()),
    SM_NUM_GPUS = "0",
    SM_HOSTS = json(I(unlist(resource$hosts))),
    SM_CURRENT_HOST = as.character(resource$current_host),
    SM_NETWORK_INTERFACE_NAME = as.character(resource$network_interface_name %||% "eth0"),
    SM_RESOURCE_CONFIG = json(resource),
    SM_INPUT_DATA_CONFIG = json(data_config)
  )
  for (ch in names(channels)) vars[[paste0("SM_CHANNEL_", toupper(ch))]] <- channels[[ch]]
  for (k in names(hps)) {
    v <- hps[[k]]
    vars[[paste0("SM_HP_", toupper(k))]] <- if (is.character(v) && length(v) == 1) v else json(v)
  }
  do.call(Sys.setenv, vars)
  invisible(vars)
}

#' Read the SageMaker toolkit environment.
#'
#' @param name an `SM_*` variable without the prefix (e.g. `"MODEL_DIR"`), or NULL for all.
#' @return the value (JSON values decoded), or a named list of all `SM_*` variables.
#' @examples
#' sm_env("NUM_CPUS")
#' @export
sm_env <- function(name = NULL) {
  decode <- function(v) if (grepl("^[\\[{]", v) && isTRUE(jsonlite::validate(v))) jsonlite::fromJSON(v) else v
  if (!is.null(name)) {
    v <- Sys.getenv(paste0("SM_", toupper(name)), NA)
    return(if (is.na(v)) NULL else decode(v))
  }
  all <- Sys.getenv()
  all <- all[startsWith(names(all), "SM_")]
  stats::setNames(lapply(as.character(all), decode), sub("^SM_", "", names(all)))
}

#' The directory of a training channel (`SM_CHANNEL_<NAME>`).
#' @param channel channel name, e.g. `"train"`.
#' @export
sm_channel <- function(channel) sm_env(paste0("CHANNEL_", channel))
