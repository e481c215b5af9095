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
#'   `csv_header`, `batch_strategy`, `max_concurrent_transforms`, `worker_socket`, `ready_file`;
#'   adaptive batching (D9): `batching` (`"auto"`, `"on"` or `"off"`), `batch_max_rows`, `batch_wait_ms`;
#'   multi-model mode (D6): `multi_model`, `mme_memory_bytes` (read in that mode only),
#'   `mme_state_dir`.
#' @keywords internal
serving_settings <- function() {
  batching <- tolower(env_string("ROSETTA_BATCHING", "auto"))
  if (!(batching %in% BATCHING_MODES)) stop(sprintf("ROSETTA_BATCHING must be 'auto', 'on' or 'off', got '%s'", env_string("ROSETTA_BATCHING")), call. = FALSE)
  max_rows <- env_int("ROSETTA_BATCH_MAX_ROWS", 512L)
  if (max_rows < 1L) stop(sprintf("ROSETTA_BATCH_MAX_ROWS must be at least 1, got %d", max_rows), call. = FALSE)
  wait_raw <- env_string("ROSETTA_BATCH_WAIT_MS", "0")
  wait_ms <- suppressWarnings(as.numeric(wait_raw))
  if (is.na(wait_ms) || !is.finite(wait_ms) || wait_ms < 0) stop(sprintf("ROSETTA_BATCH_WAIT_MS must be milliseconds >= 0, got '%s'", wait_raw), call. = FALSE)
  multi_model <- tolower(env_string("SAGEMAKER_MULTI_MODEL")) == "true"
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
    ready_file = env_string("ROSETTA_READY_FILE"),
    batching = batching,
    batch_max_rows = max_rows,
    batch_wait_ms = wait_ms,
    multi_model = multi_model,
    mme_memory_bytes = if (multi_model) mme_memory_budget() else 0,
    mme_state_dir = env_string("ROSETTA_MME_STATE_DIR", "/tmp/rosetta-mme")
  )
}

#: the values of ROSETTA_BATCHING (D9). The plumber worker batches with "on" only: its batches
#: answer through httpuv's asynchronous responses, which cost more per request than a shared call
#: saved in every measurement so far (README, "Adaptive batching"); the rpy2 flavour follows the
#: Python server, where "auto" batches.
BATCHING_MODES <- c("auto", "on", "off")
#: the share of the container's memory that models may take without ROSETTA_MME_MEMORY_MB (D6)
MME_MEMORY_SHARE <- 0.8

#' The multi-model memory budget in bytes (D6): ROSETTA_MME_MEMORY_MB (MiB; 0 refuses every
#' model), else 80 % of the container's memory limit (as the Python runtime).
#' @keywords internal
mme_memory_budget <- function() {
  raw <- env_string("ROSETTA_MME_MEMORY_MB")
  if (nzchar(raw)) {
    mb <- suppressWarnings(as.numeric(raw))
    if (is.na(mb) || mb < 0 || mb != round(mb)) stop(sprintf("ROSETTA_MME_MEMORY_MB must be an integer >= 0, got '%s'", raw), call. = FALSE)
    return(mb * MIB)
  }
  floor(memory_limit() * MME_MEMORY_SHARE)
}

#' The container's memory limit in bytes: cgroup v2 `memory.max` or v1
#' `memory.limit_in_bytes`, else (unlimited, or no cgroup) the machine's memory.
#' @keywords internal
memory_limit <- function() {
  meminfo <- tryCatch(readLines("/proc/meminfo", n = 1L, warn = FALSE), error = function(e) "")
  physical <- suppressWarnings(as.numeric(gsub("[^0-9]", "", meminfo))) * 1024
  if (is.na(physical) || physical <= 0) physical <- 4 * 1024 * MIB
  for (file in c("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
    if (!file.exists(file)) next
    raw <- tryCatch(suppressWarnings(trimws(readLines(file, n = 1L, warn = FALSE))), error = function(e) NA_character_)
    if (length(raw) != 1 || is.na(raw)) next
    value <- suppressWarnings(as.numeric(raw))
    if (!is.na(value) && value > 0 && value < physical) return(value)  # "max" or v1's huge number: none
    return(physical)
  }
  physical
}
