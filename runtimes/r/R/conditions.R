# Typed conditions: the failure kind written first in /opt/ml/output/failure (T-17) comes
# from the condition class, not from where the error happened.

#' Signal a Rosetta error of a given kind.
#' @param kind one of `HyperparameterError`, `DataError`.
#' @param message the human reason.
#' @keywords internal
rosetta_stop <- function(kind, message) {
  stop(structure(class = c(paste0("rosetta_", kind), "rosetta_error", "error", "condition"),
                 list(message = message, call = NULL, kind = kind)))
}
