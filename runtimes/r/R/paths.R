# Where things are: the SageMaker /opt/ml layout (T-01..T-15, S-02) and the user's code.
# Every path honours ROSETTA_ML_ROOT / ROSETTA_MODEL_DIR so tests can run on a temp dir.
# Training reads them once per process; serving once, in `load_state()`.

#' Root of the SageMaker layout (`ROSETTA_ML_ROOT`, default `/opt/ml`).
#' @keywords internal
ml_root <- function() env_string("ROSETTA_ML_ROOT", "/opt/ml")

#' A path under the SageMaker layout.
#' @param ... path components below the root.
#' @keywords internal
ml_path <- function(...) file.path(ml_root(), ...)

#' The model directory (`ROSETTA_MODEL_DIR`, default `/opt/ml/model`, T-14, S-01).
#' @keywords internal
model_dir <- function() env_string("ROSETTA_MODEL_DIR", ml_path("model"))

#' The user's file: `ROSETTA_CODE_DIR` (default `/opt/program`) / `ROSETTA_PROGRAM`
#' (or `SAGEMAKER_PROGRAM`, default `model.R`).
#' @keywords internal
program_file <- function() {
  name <- env_string("ROSETTA_PROGRAM", env_string("SAGEMAKER_PROGRAM", "model.R"))
  if (startsWith(name, "/")) return(name)
  file.path(env_string("ROSETTA_CODE_DIR", "/opt/program"), name)
}

#' Read a JSON config file as a list (NULL when absent).
#' @keywords internal
read_json_file <- function(path) {
  if (!file.exists(path)) return(NULL)
  jsonlite::fromJSON(path, simplifyVector = FALSE)
}
