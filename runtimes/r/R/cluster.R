# The training cluster as SageMaker describes it in resourceconfig.json (T-05, T-22, D7).

#' This training job's cluster.
#'
#' From `/opt/ml/input/config/resourceconfig.json`; without the file, the single host `algo-1`
#' on `eth0`. Call it in `fit` to split work between hosts.
#' @return `list(hosts, current_host, is_first, network_interface)`: `hosts` sorted by code point
#'   (`algo-10` before `algo-2`, as the training toolkit sorts them); `is_first` is TRUE on the
#'   first of them (the toolkit's master host, the one that usually writes the model).
#' @examples
#' if (cluster()$is_first) message("this host writes the model")
#' @export
cluster <- function() {
  path <- ml_path("input", "config", "resourceconfig.json")
  doc <- if (file.exists(path)) tryCatch(jsonlite::fromJSON(path, simplifyVector = FALSE), error = function(e) {
    rosetta_stop("DataError", sprintf("resourceconfig.json is not valid JSON: %s", conditionMessage(e)))
  }) else list()
  if (!is.list(doc) || (length(doc) && is.null(names(doc)))) rosetta_stop("DataError", "resourceconfig.json must hold an object")
  text <- function(x, default) if (is.character(x) && length(x) == 1 && nzchar(x)) x else default
  current <- text(doc[["current_host"]], "algo-1")
  listed <- doc[["hosts"]]
  hosts <- if (is.list(listed) && length(listed)) sort(as.character(unlist(listed)), method = "radix") else current
  list(hosts = hosts, current_host = current, is_first = identical(current, hosts[1]),
       network_interface = text(doc[["network_interface_name"]], "eth0"))
}
