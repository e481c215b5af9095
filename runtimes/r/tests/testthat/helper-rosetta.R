# Shared helpers: internal functions, a temporary /opt/ml, and a request builder.
r <- function(name) getFromNamespace(name, "rosetta")

with_ml_root <- function(code, hyperparameters = list(), channels = list(), model_r = NULL,
                         data_config = NULL) {
  root <- tempfile("ml")
  dir.create(file.path(root, "input", "config"), recursive = TRUE)
  dir.create(file.path(root, "model"))
  jsonlite::write_json(hyperparameters, file.path(root, "input", "config", "hyperparameters.json"), auto_unbox = TRUE)
  config <- data_config %||% stats::setNames(lapply(names(channels), function(ch) list(ContentType = "text/csv")), names(channels))
  writeLines(if (length(config)) as.character(jsonlite::toJSON(config, auto_unbox = TRUE)) else "{}",
             file.path(root, "input", "config", "inputdataconfig.json"))
  for (ch in names(channels)) {
    dir.create(file.path(root, "input", "data", ch), recursive = TRUE)
    for (f in names(channels[[ch]])) {
      path <- file.path(root, "input", "data", ch, f)
      dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
      writeLines(channels[[ch]][[f]], path)
    }
  }
  code_dir <- file.path(root, "code")
  dir.create(code_dir)
  if (!is.null(model_r)) writeLines(model_r, file.path(code_dir, "model.R"))
  old <- Sys.getenv(c("ROSETTA_ML_ROOT", "ROSETTA_CODE_DIR", "ROSETTA_MODEL_DIR"), unset = NA)
  Sys.setenv(ROSETTA_ML_ROOT = root, ROSETTA_CODE_DIR = code_dir)
  Sys.unsetenv("ROSETTA_MODEL_DIR")
  on.exit({
    for (k in names(old)) if (is.na(old[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, stats::setNames(list(old[[k]]), k))
    unlink(root, recursive = TRUE)
  })
  force(code)
  invisible(root)
}

`%||%` <- function(a, b) if (is.null(a)) b else a

#' Evaluate `code` with environment variables set (a named list; NA unsets), then restore them.
with_env <- function(vars, code) {
  old <- Sys.getenv(names(vars), unset = NA, names = TRUE)
  on.exit(for (k in names(old)) if (is.na(old[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, stats::setNames(list(old[[k]]), k)))
  for (k in names(vars)) if (is.na(vars[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, stats::setNames(list(vars[[k]]), k))
  force(code)
}

iris_csv <- function() {
  df <- datasets::iris
  names(df) <- c("sepal_length", "sepal_width", "petal_length", "petal_width", "species")
  paste(c(paste(names(df), collapse = ","), apply(df, 1, paste, collapse = ",")), collapse = "\n")
}

IRIS_MODEL_R <- '
hyperparameters <- list(ntree = 20L, target = "species")
fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  df[[hyperparameters$target]] <- factor(df[[hyperparameters$target]])
  randomForest::randomForest(stats::reformulate(".", response = hyperparameters$target), data = df,
                             ntree = hyperparameters$ntree)
}
'

request <- function(method = "POST", path = "/invocations", body = "", headers = list()) {
  names(headers) <- tolower(names(headers))
  list(method = method, path = path, headers = headers,
       body = if (is.raw(body)) body else charToRaw(enc2utf8(body)))
}
