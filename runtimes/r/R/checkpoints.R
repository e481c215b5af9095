# Checkpoints for jobs that stop and restart (spot training; T-13, D8). The folder is
# `LocalPath` of checkpointconfig.json when SageMaker writes one, else /opt/ml/checkpoints;
# SageMaker syncs it to S3 and restores it into the next attempt, so `load_checkpoint()` at
# the start of `fit` resumes where `save_checkpoint()` left off.

CHECKPOINT_FILE <- "rosetta-checkpoint.rds"

#' The checkpoint folder (created if missing), for users who write their own files there.
#' @return the folder's path.
#' @export
checkpoint_dir <- function() {
  folder <- ml_path("checkpoints")
  config <- ml_path("input", "config", "checkpointconfig.json")
  if (file.exists(config)) {
    doc <- tryCatch(jsonlite::fromJSON(config, simplifyVector = FALSE), error = function(e) {
      rosetta_stop("DataError", sprintf("checkpointconfig.json is not valid JSON: %s", conditionMessage(e)))
    })
    local <- if (is.list(doc)) doc[["LocalPath"]] else NULL
    if (is.character(local) && length(local) == 1 && nzchar(local)) folder <- local
  }
  dir.create(folder, recursive = TRUE, showWarnings = FALSE)
  folder
}

#' Save an R object as the checkpoint (`saveRDS`), atomically: a stop in the middle leaves the
#' previous checkpoint whole.
#' @param obj any R object.
#' @return the checkpoint file, invisibly.
#' @export
save_checkpoint <- function(obj) {
  file <- file.path(checkpoint_dir(), CHECKPOINT_FILE)
  tmp <- tempfile(paste0(".", CHECKPOINT_FILE, "."), tmpdir = dirname(file))
  ok <- FALSE
  on.exit(if (!ok) unlink(tmp))
  saveRDS(obj, tmp)
  if (!file.rename(tmp, file)) stop(sprintf("cannot write the checkpoint %s", file), call. = FALSE)
  ok <- TRUE
  invisible(file)
}

#' The object of the last `save_checkpoint()`, or NULL when there is no checkpoint.
#' @export
load_checkpoint <- function() {
  file <- file.path(checkpoint_dir(), CHECKPOINT_FILE)
  if (!file.exists(file)) return(NULL)
  tryCatch(readRDS(file), error = function(e) {
    rosetta_stop("DataError", sprintf("checkpoint %s is unreadable: %s", file, conditionMessage(e)))
  })
}
