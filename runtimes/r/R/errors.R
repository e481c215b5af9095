# The runtime's conditions: each maps to one failure-file kind (T-17) or one HTTP status
# (S-16). The kind comes from the condition class, not from where the error happened.

#' Signal a Rosetta error of a given kind.
#' @param kind one of `HyperparameterError`, `DataError`.
#' @param message the human reason.
#' @keywords internal
rosetta_stop <- function(kind, message) {
  stop(structure(class = c(paste0("rosetta_", kind), "rosetta_error", "error", "condition"),
                 list(message = message, call = NULL, kind = kind)))
}

#' Signal a 400 with a short message.
#' @param message the one-line text of the response body.
#' @keywords internal
bad_request <- function(message) {
  stop(structure(class = c("rosetta_bad_request", "error", "condition"),
                 list(message = message, call = NULL)))
}

#' The first line of a condition's message, at most 200 characters: what a client sees of an
#' error raised by user code (`cannot decode payload: …`, `model error: …`; D3). No class
#' name: it would differ per language.
#' @param cond a condition.
#' @keywords internal
error_line <- function(cond) {
  line <- strsplit(conditionMessage(cond), "\n", fixed = TRUE)[[1]][1]
  if (is.na(line)) "" else substr(line, 1L, 200L)
}
