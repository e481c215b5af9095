# Settings read once (issue 15.4): the environment variables of serving are read here, at
# start, into one settings list (like the Python runtime's `ServingSettings`); request
# handlers and codecs only look at that list, never at the environment.

#: SageMaker's real-time payload limit; the body limit never goes below it (S-12)
MIN_PAYLOAD_MB <- 6L
#: MaxPayloadInMB advertised on /execution-parameters without SAGEMAKER_MAX_PAYLOAD_IN_MB (B-03):
#: a few MB of records spread over all workers (docs/runtime-contract.md); not the body limit
BATCH_PAYLOAD_MB <- 2L
MIB <- 1024 * 1024
#: words read as TRUE / FALSE, case-insensitive (hyperparameters, ROSETTA_CSV_HEADER; D4)
TRUE_WORDS <- c("true", "1", "yes", "y", "on")
FALSE_WORDS <- c("false", "0", "no", "n", "off")

#' A string environment variable, trimmed; `default` when unset or blank.
#' @keywords internal
env_string <- function(name, default = "") {
  raw <- trimws(Sys.getenv(name, ""))
  if (nzchar(raw)) raw else default
}

#' An integer environment variable, with a clear error naming it.
#' @keywords internal
env_int <- function(name, default) {
  raw <- env_string(name)
  if (!nzchar(raw)) return(as.integer(default))
  value <- suppressWarnings(as.numeric(raw))
  if (is.na(value) || value != round(value)) stop(sprintf("%s: expected an integer, got '%s'", name, raw), call. = FALSE)
  as.integer(value)
}

#' A boolean environment variable (`TRUE_WORDS`); `default` when unset or blank.
#' @keywords internal
env_bool <- function(name, default = FALSE) {
  raw <- tolower(env_string(name))
  if (!nzchar(raw)) default else raw %in% TRUE_WORDS
}

#' The serving settings, read from the environment once (S-04, S-12, B-02, B-03, D1, D3).
#'
#' @return a list: `port`, `workers`, `max_body_bytes` (the request body limit, never below 6
#'   MiB), `batch_payload_mb` (MaxPayloadInMB of `/execution-parameters`), `default_accept`,
#'   `csv_header`, `batch_strategy`, `max_concurrent_transforms`, `worker_socket`, `ready_file`.
#' @keywords internal
serving_settings <- function() {
  workers <- max(1L, env_int("ROSETTA_WORKERS", env_int("SAGEMAKER_MODEL_SERVER_WORKERS", parallel::detectCores())))
  strategy <- gsub("MULTIRECORD", "MULTI_RECORD", gsub("SINGLERECORD", "SINGLE_RECORD",
                   toupper(env_string("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD")), fixed = TRUE), fixed = TRUE)
  list(
    port = env_int("SAGEMAKER_BIND_TO_PORT", 8080L),
    workers = workers,
    max_body_bytes = max(MIN_PAYLOAD_MB, env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", MIN_PAYLOAD_MB)) * MIB,
    batch_payload_mb = max(1L, env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", BATCH_PAYLOAD_MB)),
    default_accept = env_string("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
    csv_header = env_bool("ROSETTA_CSV_HEADER"),
    batch_strategy = if (strategy %in% c("MULTI_RECORD", "SINGLE_RECORD")) strategy else "MULTI_RECORD",
    max_concurrent_transforms = env_int("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", workers),
    worker_socket = env_string("ROSETTA_WORKER_SOCKET"),
    ready_file = env_string("ROSETTA_READY_FILE")
  )
}
