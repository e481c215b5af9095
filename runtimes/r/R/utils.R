# A base-R helper the other files share (base R has `%||%` only from 4.4; the image has 4.2).

#' `a` unless it is NULL, else `b`.
#' @keywords internal
#' @name null-default
`%||%` <- function(a, b) if (is.null(a)) b else a
