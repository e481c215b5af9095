# The failure file (T-17): first line the human reason `<Kind>: <message>`, a blank line,
# then details. The same reason goes to stderr.

#' Write /opt/ml/output/failure and echo the reason on stderr.
#' @param kind `HyperparameterError`, `DataError`, `UserCodeError`, `MemoryError` or `Stopped`.
#' @param message one-line reason.
#' @param details traceback or other details (character).
#' @keywords internal
write_failure <- function(kind, message, details = character(0)) {
  reason <- paste0(kind, ": ", gsub("[\r\n]+", " ", message))
  dir <- ml_path("output")
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  text <- paste0(reason, "\n\n", paste(details, collapse = "\n"), "\n")
  tryCatch(writeLines(text, file.path(dir, "failure"), sep = ""),
           error = function(e) message("cannot write failure file: ", conditionMessage(e)))
  message(reason)
  invisible(reason)
}

#' Classify a condition into (kind, message) for the failure file.
#' @keywords internal
classify_failure <- function(cond) {
  if (inherits(cond, "interrupt")) return(list(kind = "Stopped", message = "received SIGTERM"))
  if (inherits(cond, "rosetta_error")) return(list(kind = cond$kind, message = conditionMessage(cond)))
  msg <- conditionMessage(cond)
  if (grepl("cannot allocate|memory exhausted", msg)) return(list(kind = "MemoryError", message = msg))
  list(kind = "UserCodeError", message = sprintf("%s: %s", class(cond)[1], msg))
}
