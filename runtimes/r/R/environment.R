# The training toolkit's environment (E-01..E-13) for user code that expects SM_* vars.
# Values are strings; everything but a string is JSON (C-07), as sagemaker-training writes them.

#' A toolkit value as its variable's text: a string as is, anything else as compact JSON.
#' @keywords internal
toolkit_text <- function(value) {
  if (is.character(value) && length(value) == 1 && !inherits(value, "AsIs")) return(value)
  as.character(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", digits = NA))
}

#' The SM_* variables of a training process (E-01..E-13), as a named list of strings.
#' @param hps the hyperparameters given, decoded and typed (`toolkit_hyperparameters()`).
#' @param channels named character vector of channel directories.
#' @keywords internal
toolkit_env <- function(hps, channels) {
  resource <- read_json_file(ml_path("input", "config", "resourceconfig.json")) %||%
    list(current_host = "algo-1", hosts = list("algo-1"), network_interface_name = "eth0")
  data_config <- read_json_file(ml_path("input", "config", "inputdataconfig.json")) %||% structure(list(), names = character(0))
  if (!length(hps)) hps <- structure(list(), names = character(0))
  vars <- list(
    SM_MODEL_DIR = model_dir(),
    SM_CHANNELS = I(sort(names(channels), method = "radix")),
    SM_HPS = hps,
    SM_OUTPUT_DATA_DIR = ml_path("output", "data"),
    SM_OUTPUT_DIR = ml_path("output"),
    SM_OUTPUT_INTERMEDIATE_DIR = ml_path("output", "intermediate"),
    SM_INPUT_DIR = ml_path("input"),
    SM_INPUT_CONFIG_DIR = ml_path("input", "config"),
    SM_NUM_CPUS = parallel::detectCores(),
    SM_NUM_GPUS = 0L,
    SM_HOSTS = I(as.character(unlist(resource$hosts))),
    SM_CURRENT_HOST = as.character(resource$current_host %||% ""),
    SM_NETWORK_INTERFACE_NAME = as.character(resource$network_interface_name %||% "eth0"),
    SM_RESOURCE_CONFIG = resource,
    SM_INPUT_DATA_CONFIG = data_config
  )
  vars$SM_USER_ARGS <- I(user_args(hps))
  training <- vars
  names(training) <- tolower(sub("^SM_", "", names(training)))
  vars$SM_TRAINING_ENV <- training
  for (ch in names(channels)) vars[[paste0("SM_CHANNEL_", toupper(ch))]] <- channels[[ch]]
  for (k in names(hps)) vars[[paste0("SM_HP_", toupper(k))]] <- hps[[k]]
  lapply(vars, toolkit_text)
}

#' `--key value` per hyperparameter, keys sorted, one-letter keys as `-k` (E-13).
#' @keywords internal
user_args <- function(hps) {
  keys <- sort(names(hps), method = "radix")
  args <- lapply(keys, function(k) c(if (nchar(k) == 1) paste0("-", k) else paste0("--", k), toolkit_text(hps[[k]])))
  as.character(unlist(args))
}

#' Set the SM_* variables for the training process.
#' @inheritParams toolkit_env
#' @keywords internal
set_toolkit_env <- function(hps, channels) {
  vars <- toolkit_env(hps, channels)
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
