#!/usr/bin/env Rscript
# Evaluate every runtime's batch-transform output against the hold-out labels.
#
# A SageMaker Processing script in base R (no packages): input `test` holds test.csv (header, with
# the target column); every other input `<runtime>` holds `<file>.out` from a transform step, one
# prediction per line in the order of test_features.csv (B-08). Writes
# /opt/ml/processing/output/evaluation/evaluation.json:
#   {"python": {"accuracy": 0.97, "correct": 29, "n": 30}, ...}

root <- "/opt/ml/processing"

#' Value of a `--name value` command-line option, or `default`.
option <- function(name, default) {
  args <- commandArgs(trailingOnly = TRUE)
  i <- match(paste0("--", name), args)
  if (is.na(i) || i == length(args)) default else args[[i + 1]]
}

#' Predictions from every `.out` file of a transform output folder, in file order.
read_predictions <- function(dir) {
  files <- sort(list.files(dir, pattern = "\\.out$", full.names = TRUE, recursive = TRUE))
  if (length(files) == 0) stop("no .out files in ", dir)
  lines <- unlist(lapply(files, readLines, warn = FALSE))
  lines <- lines[nzchar(trimws(lines))]
  # first field of each line; quotes dropped (CSV strings)
  gsub('^"|"$', "", trimws(sub(",.*$", "", lines)))
}

#' A JSON number/string/object, enough for this report (base R has no JSON writer).
to_json <- function(x) {
  if (is.list(x)) {
    inner <- vapply(names(x), function(k) sprintf('"%s": %s', k, to_json(x[[k]])), "")
    return(paste0("{", paste(inner, collapse = ", "), "}"))
  }
  if (is.character(x)) return(sprintf('"%s"', gsub('"', '\\\\"', x)))
  format(x, digits = 6)
}

target <- option("target", "species")
test <- read.csv(file.path(root, "input", "test", "test.csv"), stringsAsFactors = FALSE)
if (!target %in% names(test)) stop("target column '", target, "' not in test.csv")
truth <- as.character(test[[target]])

inputs <- setdiff(list.dirs(file.path(root, "input"), recursive = FALSE, full.names = FALSE),
                  c("test", "code"))
report <- list()
for (runtime in sort(inputs)) {
  predicted <- read_predictions(file.path(root, "input", runtime))
  if (length(predicted) != length(truth)) {
    stop(runtime, ": ", length(predicted), " predictions for ", length(truth), " test rows")
  }
  correct <- sum(predicted == truth)
  report[[runtime]] <- list(accuracy = correct / length(truth), correct = correct, n = length(truth))
  cat(sprintf("%-8s accuracy %.3f (%d/%d)\n", runtime, correct / length(truth), correct, length(truth)))
}

out <- file.path(root, "output", "evaluation")
dir.create(out, recursive = TRUE, showWarnings = FALSE)
writeLines(to_json(report), file.path(out, "evaluation.json"))
