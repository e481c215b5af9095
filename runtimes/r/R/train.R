# The training entry (`IMAGE train`, contract §3): hyperparameters, channels, toolkit env,
# the user's fit, save, rosetta.json (D2); every failure path writes the failure file (T-17).
# SIGTERM (T-21): the entrypoint turns it into SIGINT for this process, which R raises as
# an `interrupt` condition; the user's `checkpoint()` runs while fit's frames are alive.

METADATA_FILE <- "rosetta.json"

#' The request columns of a trained model (D2): the user's `feature_names(model)` if
#' declared; else the columns of the training table `fit` read minus the `target`
#' hyperparameter (when it names one of them); else unknown, with the user's
#' `n_features(model)` if declared.
#' @param user the user's environment.
#' @param model the fitted model.
#' @param data the `data` argument `fit` was given (it knows which tables were read).
#' @param hps the typed hyperparameters.
#' @return `list(features = character or NULL, n_features = integer or NULL)`.
#' @keywords internal
model_features <- function(user, model, data, hps) {
  features <- user_declared(user, "feature_names", model)
  if (is.null(features)) {
    columns <- table_read(data)
    target <- hps[["target"]]
    if (!is.null(columns) && is.character(target) && length(target) == 1 && target %in% columns) {
      features <- columns[columns != target]
    }
  }
  if (!is.null(features)) return(list(features = as.character(features), n_features = length(features)))
  n <- user_declared(user, "n_features", model)
  list(features = NULL, n_features = if (is.null(n)) NULL else as.integer(n))
}

#' Write `rosetta.json`: runtime, request columns (D2), creation time.
#' @keywords internal
write_metadata <- function(columns, dir = model_dir()) {
  meta <- list(runtime = "r", features = if (is.null(columns$features)) NULL else I(columns$features),
               n_features = columns$n_features,
               created = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"))
  jsonlite::write_json(meta, file.path(dir, METADATA_FILE), auto_unbox = TRUE, null = "null", pretty = TRUE)
  invisible(meta)
}

#' Run one training job (no exit); errors propagate as conditions.
#' @keywords internal
run_training <- function(state) {
  raw <- read_json_file(ml_path("input", "config", "hyperparameters.json")) %||% list()
  state$user <- load_user()
  if (is.null(user_hook(state$user, "fit"))) rosetta_stop("UserCodeError", sprintf("%s defines no fit(data, hyperparameters)", basename(program_file())))
  defaults <- user_defaults(state$user)
  hps <- typed_hyperparameters(raw, defaults)
  paths <- channel_paths()
  set_toolkit_env(toolkit_hyperparameters(hps, raw, defaults), paths)
  dir.create(ml_path("output", "data"), recursive = TRUE, showWarnings = FALSE)
  message(sprintf("rosetta: training with %s; channels: %s", program_file(), paste(names(paths), collapse = ", ")))
  data <- channel_data(paths)
  model <- state$user$fit(data, hps)
  if (is.null(model)) rosetta_stop("UserCodeError", "fit returned NULL; return the trained model")
  columns <- model_features(state$user, model, data, hps)
  save_fitted(model, state$user)
  write_metadata(columns)
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
          tryCatch(hook(checkpoint_dir()), error = function(e) message("checkpoint failed: ", conditionMessage(e)))
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
