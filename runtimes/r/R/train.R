# The training entry (`IMAGE train`, contract §3): hyperparameters, channels, toolkit env,
# the user's fit, save, rosetta.json; every failure path writes the failure file (T-17).
# SIGTERM (T-21): the entrypoint turns it into SIGINT for this process, which R raises as
# an `interrupt` condition; the user's `checkpoint()` runs while fit's frames are alive.

#' Run one training job (no exit); errors propagate as conditions.
#' @keywords internal
run_training <- function(state) {
  raw <- read_json_file(ml_path("input", "config", "hyperparameters.json")) %||% list()
  state$user <- load_user()
  if (is.null(user_hook(state$user, "fit"))) stop(sprintf("%s defines no fit(data, hyperparameters)", program_file()), call. = FALSE)
  hps <- typed_hyperparameters(raw, user_defaults(state$user))
  paths <- channel_paths()
  # SM_HPS / SM_HP_*: the hyperparameters given (decoded and typed), not the defaults (E-04)
  given <- names(raw) %||% character(0)
  given <- given[!startsWith(given, "sagemaker_") & given %in% names(hps)]
  set_toolkit_env(hps[given], paths)
  dir.create(ml_path("output", "data"), recursive = TRUE, showWarnings = FALSE)
  message(sprintf("rosetta: training with %s; channels: %s", program_file(), paste(names(paths), collapse = ", ")))
  model <- state$user$fit(channel_data(paths), hps)
  save_fitted(model, state$user)
  message(sprintf("rosetta: model saved to %s", model_dir()))
  invisible(model)
}

#' Train and exit: 0 on success, 1 on failure, 143 on SIGTERM (T-16, T-17, T-21).
#' @param exit call `quit()` (FALSE in tests: return the status instead).
#' @export
train_main <- function(exit = TRUE) {
  state <- new.env()
  state$user <- NULL
  trace <- NULL
  stopping <- FALSE
  status <- tryCatch(
    withCallingHandlers({ run_training(state); 0L },
      interrupt = function(cond) {
        # still inside fit: let the user save what they have (T-13, T-21)
        if (stopping) return()
        stopping <<- TRUE
        hook <- user_hook(state$user, "checkpoint")
        if (!is.null(hook)) {
          dir <- ml_path("checkpoints")
          dir.create(dir, recursive = TRUE, showWarnings = FALSE)
          tryCatch(hook(dir), error = function(e) message("checkpoint failed: ", conditionMessage(e)))
        }
      },
      error = function(cond) trace <<- format_trace(sys.calls())),
    interrupt = function(cond) {
      write_failure("Stopped", "received SIGTERM")
      143L
    },
    error = function(cond) {
      f <- classify_failure(cond)
      write_failure(f$kind, f$message, c(conditionMessage(cond), "", trace))
      1L
    })
  if (exit) quit(save = "no", status = status)
  status
}

#' Render a call stack for the failure file's details.
#' @keywords internal
format_trace <- function(calls) {
  lines <- vapply(calls, function(cl) paste(deparse(cl, nlines = 1L), collapse = ""), "")
  keep <- !grepl("^(withCallingHandlers|tryCatch|tryCatchList|tryCatchOne|doTryCatch|train_main|h\\(|\\.handleSimpleError)", lines)
  paste0("  ", seq_along(lines[keep]), ": ", lines[keep])
}
