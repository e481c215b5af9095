# Where things are: the SageMaker /opt/ml layout (T-01..T-15, S-02) and the user's code.
# Every path honours ROSETTA_ML_ROOT / ROSETTA_MODEL_DIR so tests can run on a temp dir.

#' Root of the SageMaker layout (`ROSETTA_ML_ROOT`, default `/opt/ml`).
#' @keywords internal
ml_root <- function() Sys.getenv("ROSETTA_ML_ROOT", "/opt/ml")

#' A path under the SageMaker layout.
#' @param ... path components below the root.
#' @keywords internal
ml_path <- function(...) file.path(ml_root(), ...)

#' The model directory (`ROSETTA_MODEL_DIR`, default `/opt/ml/model`, T-14, S-01).
#' @keywords internal
model_dir <- function() Sys.getenv("ROSETTA_MODEL_DIR", ml_path("model"))

#' The user's file: `ROSETTA_CODE_DIR` (default `/opt/program`) / `ROSETTA_PROGRAM`
#' (or `SAGEMAKER_PROGRAM`, default `model.R`).
#' @keywords internal
program_file <- function() {
  name <- Sys.getenv("ROSETTA_PROGRAM", Sys.getenv("SAGEMAKER_PROGRAM", "model.R"))
  if (grepl("^/", name)) return(name)
  file.path(Sys.getenv("ROSETTA_CODE_DIR", "/opt/program"), name)
}

#' Read a JSON config file as a list (NULL when absent).
#' @keywords internal
read_json_file <- function(path) {
  if (!file.exists(path)) return(NULL)
  jsonlite::fromJSON(path, simplifyVector = FALSE)
}

#' An integer environment variable, with a clear error naming it.
#' @keywords internal
env_int <- function(name, default) {
  raw <- Sys.getenv(name, "")
  if (!nzchar(raw)) return(as.integer(default))
  value <- suppressWarnings(as.numeric(raw))
  if (is.na(value) || value != round(value)) stop(sprintf("%s: expected an integer, got '%s'", name, raw), call. = FALSE)
  as.integer(value)
}

#' MaxPayloadInMB advertised on `/execution-parameters` (B-03): `SAGEMAKER_MAX_PAYLOAD_IN_MB`, else 2 MB
#' so that a few MB of records spread over all workers (docs/runtime-contract.md); not the body limit.
#' @keywords internal
batch_payload_mb <- function() max(1L, env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", 2L))
