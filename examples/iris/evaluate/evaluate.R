#!/usr/bin/env Rscript
# Evaluate every runtime's batch-transform output against the hold-out labels.
#
# A SageMaker Processing script in base R (no packages): input `test` holds test.csv (header, with
# the target column); every other input `<runtime>` holds `<file>.out` from a transform step, one
# prediction per line in the order of test_features.csv (B-08). `--model <runtime>=<s3 uri>` and
# `--image <runtime>=<image>` (repeated) name each runtime's model, so the report can say which one
# is best. Writes /opt/ml/processing/output/evaluation/evaluation.json (a pipeline property file):
#   {"python": {"accuracy": 0.97, "correct": 29, "n": 30}, ...,
#    "best": {"runtime": "python", "accuracy": 0.97, "model_data": "s3://…", "image": "…"}}

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

#' Every `--name key=value` option as a named character vector (key → value).
options_map <- function(name) {
  args <- commandArgs(trailingOnly = TRUE)
  at <- which(args == paste0("--", name))
  values <- args[at[at < length(args)] + 1]
  keys <- sub("=.*$", "", values)
  stats::setNames(sub("^[^=]*=", "", values), keys)
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

# the best runtime (highest accuracy; ties: alphabetical), with what registering it needs
models <- options_map("model")
images <- options_map("image")
if (length(report) > 0) {
  accuracy <- vapply(report, function(r) r$accuracy, numeric(1))
  best <- names(report)[order(-accuracy, names(report))][[1]]
  report[["best"]] <- list(runtime = best, accuracy = report[[best]]$accuracy,
                           model_data = unname(if (best %in% names(models)) models[[best]] else ""),
                           image = unname(if (best %in% names(images)) images[[best]] else ""))
  cat(sprintf("best: %s (accuracy %.3f)\n", best, report[[best]]$accuracy))
}

out <- file.path(root, "output", "evaluation")
dir.create(out, recursive = TRUE, showWarnings = FALSE)
writeLines(to_json(report), file.path(out, "evaluation.json"))
