# Metrics (T-20): one stdout line per metric, `#metric <name>=<value>`, matched by the
# regex `<name>=(\S+)` in the estimator's metric definitions.

#' Log a training metric.
#'
#' @param name metric name (no spaces or `=`).
#' @param value a number.
#' @return the line, invisibly.
#' @examples
#' log_metric("accuracy", 0.96)
#' @export
log_metric <- function(name, value) {
  if (grepl("[\\s=]", name, perl = TRUE)) stop("metric name must not contain spaces or '='")
  line <- sprintf("#metric %s=%s", name, format(as.numeric(value), digits = 10))
  cat(line, "\n", sep = "")
  utils::flush.console()
  invisible(line)
}
