# Channels (T-04, T-07, T-08; D4): /opt/ml/input/data/<channel>/, possibly read-only: never
# written. `data[[channel]]` is one data.frame of every .csv file of the channel (header row),
# read lazily on first use; `attr(data, "paths")` maps channel names to directories, for
# other files. The tables read are remembered: their columns give the request columns (D2).

#' Channel directories: those in inputdataconfig.json (which must exist) plus any other
#' directory under input/data.
#' @keywords internal
channel_paths <- function() {
  root <- ml_path("input", "data")
  config <- read_json_file(ml_path("input", "config", "inputdataconfig.json")) %||% list()
  for (ch in names(config)) {
    if (!dir.exists(file.path(root, ch))) {
      rosetta_stop("DataError", sprintf("channel '%s' is configured but %s has no such folder", ch, root))
    }
  }
  on_disk <- if (dir.exists(root)) basename(list.dirs(root, recursive = FALSE)) else character(0)
  names <- sort(unique(c(names(config), on_disk)), method = "radix")
  stats::setNames(file.path(root, names), names)
}

#' The files of a channel's table: every non-hidden file whose name ends in `.csv`
#' (case-insensitive), recursively, sorted by relative path (byte order, as in every runtime).
#' @return relative paths; attribute `others`: the other files.
#' @keywords internal
channel_files <- function(path) {
  all <- list.files(path, recursive = TRUE, all.files = FALSE)
  all <- all[order(all, method = "radix")]
  csv <- grepl("\\.csv$", all, ignore.case = TRUE)
  structure(all[csv], others = all[!csv])
}

#' Read a channel's .csv files into one data.frame; they must share one header (D4).
#' @keywords internal
read_channel <- function(channel, path) {
  files <- channel_files(path)
  if (length(files) == 0) {
    others <- attr(files, "others")
    rosetta_stop("DataError", sprintf("channel '%s' has no .csv files (found: %s)", channel,
                                      if (length(others)) paste(others, collapse = ", ") else "nothing"))
  }
  frames <- lapply(files, function(f) tryCatch(
    utils::read.csv(file.path(path, f), stringsAsFactors = FALSE, check.names = FALSE),
    error = function(e) rosetta_stop("DataError", sprintf("channel '%s': cannot read %s: %s",
                                                            channel, f, conditionMessage(e)))))
  columns <- names(frames[[1]])
  for (i in seq_along(frames)[-1]) {
    if (!identical(names(frames[[i]]), columns)) {
      rosetta_stop("DataError", sprintf("channel '%s': %s has columns %s but %s has %s", channel, files[i],
                                        paste(names(frames[[i]]), collapse = ", "), files[1], paste(columns, collapse = ", ")))
    }
  }
  df <- if (length(frames) == 1) frames[[1]] else do.call(rbind, frames)
  if (nrow(df) == 0) rosetta_stop("DataError", sprintf("channel '%s' is empty", channel))
  df
}

#' The `data` argument of `fit`: an environment whose channels are read on first access.
#' Attribute `reads`: an environment of channel name → columns, for the tables read (D2).
#' @keywords internal
channel_data <- function(paths = channel_paths()) {
  data <- new.env(parent = emptyenv())
  reads <- new.env(parent = emptyenv())
  for (ch in names(paths)) {
    local({
      channel <- ch
      delayedAssign(channel, {
        df <- read_channel(channel, paths[[channel]])
        assign(channel, names(df), envir = reads)
        df
      }, assign.env = data)
    })
  }
  attr(data, "paths") <- paths
  attr(data, "reads") <- reads
  class(data) <- "rosetta_data"
  data
}

#' The columns of the training table the user read (D2): channel `train`'s if it was read,
#' else those of the only channel read; NULL otherwise.
#' @keywords internal
table_read <- function(data) {
  reads <- attr(data, "reads")
  if (is.null(reads)) return(NULL)
  read <- ls(reads, sorted = FALSE)
  if ("train" %in% read) return(reads[["train"]])
  if (length(read) == 1) return(reads[[read]])
  NULL
}

#' @export
`[[.rosetta_data` <- function(x, i) {
  if (!exists(i, envir = x, inherits = FALSE)) {
    channels <- names(attr(x, "paths"))
    rosetta_stop("DataError", sprintf("no channel '%s'; channels: %s", i,
                                      if (length(channels)) paste(channels, collapse = ", ") else "none"))
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
