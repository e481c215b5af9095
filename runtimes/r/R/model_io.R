# Saving and loading the model (T-14, S-01/S-02) plus rosetta.json and the n_features /
# feature_names generics the server uses to check and name input columns.

#' Number of input features a model expects (NULL when unknown).
#'
#' Write a method for your model class to let the server reject wrong-width requests with
#' a 400 (`row 1 has 3 columns, expected 4`).
#' @param model a fitted model.
#' @return an integer or NULL.
#' @export
n_features <- function(model) UseMethod("n_features")

#' @rdname n_features
#' @export
n_features.default <- function(model) {
  names <- feature_names(model)
  if (is.null(names)) NULL else length(names)
}

#' @rdname n_features
#' @export
n_features.randomForest <- function(model) length(model$forest$ncat)

#' Names of the input columns in order (NULL when unknown); requests' headerless rows get
#' these names before `predict()`.
#' @param model a fitted model.
#' @export
feature_names <- function(model) UseMethod("feature_names")

#' @rdname feature_names
#' @export
feature_names.default <- function(model) {
  terms <- tryCatch(stats::terms(model), error = function(e) NULL)
  if (is.null(terms)) return(NULL)
  labels <- attr(terms, "term.labels")
  if (length(labels)) labels else NULL
}

#' @rdname feature_names
#' @export
feature_names.randomForest <- function(model) rownames(model$importance)

#' Save the model with the user's `save_model(model, model_dir)` or `saveRDS` to
#' `model.rds`, then write `rosetta.json`.
#' @keywords internal
save_fitted <- function(model, user, dir = model_dir()) {
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  save <- user_hook(user, "save_model")
  if (is.null(save)) saveRDS(model, file.path(dir, "model.rds")) else save(model, dir)
  nf <- tryCatch(n_features(model), error = function(e) NULL)
  meta <- list(runtime = "r", n_features = if (is.null(nf)) NULL else as.integer(nf),
               features = feature_names(model),
               created = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"))
  jsonlite::write_json(meta, file.path(dir, "rosetta.json"), auto_unbox = TRUE, null = "null", pretty = TRUE)
  invisible(meta)
}

#' Load the model with the user's `load_model(model_dir)` or `readRDS`.
#' @keywords internal
load_fitted <- function(user, dir = model_dir()) {
  load <- user_hook(user, "load_model")
  if (!is.null(load)) return(load(dir))
  path <- file.path(dir, "model.rds")
  if (!file.exists(path)) stop(sprintf("no model at %s (train first, or define load_model)", path), call. = FALSE)
  readRDS(path)
}

#' rosetta.json of a model directory, or an empty list.
#' @keywords internal
model_meta <- function(dir = model_dir()) {
  path <- file.path(dir, "rosetta.json")
  if (!file.exists(path)) return(list())
  tryCatch(jsonlite::fromJSON(path, simplifyVector = TRUE), error = function(e) list())
}
