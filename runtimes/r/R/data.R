# Channels (T-04, T-07, T-08): /opt/ml/input/data/<channel>/, possibly read-only: never
# written. `data[[channel]]` is a data.frame of all the channel's CSV files (header row),
# read lazily on first use; `attr(data, "paths")` maps channel names to directories.

#' Channel directories: those in inputdataconfig.json (which must exist) plus any other
#' directory under input/data.
#' @keywords internal
channel_paths <- function() {
  root <- ml_path("input", "data")
  config <- read_json_file(ml_path("input", "config", "inputdataconfig.json")) %||% list()
  for (ch in names(config)) {
    if (!dir.exists(file.path(root, ch))) {
      rosetta_stop("DataError", sprintf("channel '%s' is missing: %s", ch, file.path(root, ch)))
    }
  }
  on_disk <- if (dir.exists(root)) basename(list.dirs(root, recursive = FALSE)) else character(0)
  names <- unique(c(names(config), on_disk))
  stats::setNames(file.path(root, names), names)
}

#' Read every CSV file of a channel into one data.frame.
#' @keywords internal
read_channel <- function(channel, path) {
  files <- sort(list.files(path, pattern = "\\.csv$", recursive = TRUE, full.names = TRUE, ignore.case = TRUE))
  if (length(files) == 0) rosetta_stop("DataError", sprintf("channel '%s' has no CSV files in %s", channel, path))
  frames <- lapply(files, function(f) tryCatch(
    utils::read.csv(f, stringsAsFactors = FALSE, check.names = FALSE),
    error = function(e) rosetta_stop("DataError", sprintf("channel '%s': cannot read %s: %s",
                                                            channel, basename(f), conditionMessage(e)))))
  df <- tryCatch(do.call(rbind, frames), error = function(e) rosetta_stop("DataError", sprintf(
    "channel '%s': the CSV files have different columns (%s)", channel, conditionMessage(e))))
  if (nrow(df) == 0) rosetta_stop("DataError", sprintf("channel '%s' is empty", channel))
  df
}

#' The `data` argument of `fit`: an environment whose channels are read on first access.
#' @keywords internal
channel_data <- function(paths = channel_paths()) {
  data <- new.env(parent = emptyenv())
  for (ch in names(paths)) {
    local({
      channel <- ch
      delayedAssign(channel, read_channel(channel, paths[[channel]]), assign.env = data)
    })
  }
  attr(data, "paths") <- paths
  class(data) <- "rosetta_data"
  data
}

#' @export
`[[.rosetta_data` <- function(x, i) {
  if (!exists(i, envir = x, inherits = FALSE)) {
    rosetta_stop("DataError", sprintf("no channel '%s' (channels: %s)", i,
                                      paste(names(attr(x, "paths")), collapse = ", ")))
  }
  get(i, envir = x, inherits = FALSE)
}

#' @export
`$.rosetta_data` <- function(x, name) x[[name]]

#' @export
names.rosetta_data <- function(x) names(attr(x, "paths"))

#' @export
print.rosetta_data <- function(x, ...) {
  cat("<rosetta data> channels:", paste(names(x), collapse = ", "), "\n")
  invisible(x)
}
