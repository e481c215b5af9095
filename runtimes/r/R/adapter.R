# The runtime's view of a loaded model (like the Python runtime's `ModelAdapter`): the
# serving state built once at start (settings, user code and hooks, the model, its request
# columns), the model input handed to user code, and the prediction call. Both HTTP layers
# use it: plumber (serve.R, through dispatch()) and the Python server (rpy2/rosetta_rpy2.py).

#' rosetta.json of a model directory, or an empty list.
#' @keywords internal
model_meta <- function(dir = model_dir()) {
  path <- file.path(dir, METADATA_FILE)
  if (!file.exists(path)) return(list())
  tryCatch(jsonlite::fromJSON(path, simplifyVector = TRUE), error = function(e) list())
}

#' The server state of a loaded model: everything a request needs, resolved once (issue
#' 15.4): the settings, the user's hooks, the request columns, the codecs' options and the
#' default response type. `ready` is FALSE until `load_state()` has warmed it up.
#' @param model the fitted model.
#' @param user the user's environment (`load_user()`), or NULL.
#' @param features the request columns' names (D2), or NULL.
#' @param n_features their number, or NULL (`length(features)` when names are known).
#' @param settings the serving settings (`serving_settings()`).
#' @keywords internal
new_state <- function(model, user = NULL, features = NULL, n_features = NULL, settings = serving_settings()) {
  state <- new.env()
  state$ready <- FALSE
  state$settings <- settings
  state$user <- user
  state$model <- model
  state$features <- if (length(features)) as.character(features) else NULL
  state$n_features <- if (!is.null(state$features)) length(state$features) else if (length(n_features)) as.integer(n_features) else NULL
  state$input_fn <- user_hook(user, "input_fn")
  state$output_fn <- user_hook(user, "output_fn")
  state$predict_model <- user_hook(user, "predict_model")
  state$decode_options <- decode_options(state$n_features, state$features, settings$csv_header)
  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: the answer's type when Accept is absent, empty or */*
  state$default_accept <- if (nzchar(settings$default_accept)) parse_media_type(settings$default_accept)$type else NA_character_
  state$default_codec <- canonical_type(state$default_accept %||% NA_character_)
  # D9: concurrent requests share predict calls when the user declared predict row-wise
  state$rowwise <- user_rowwise(user)
  state$batcher <- if (identical(settings$batching, "on") && state$rowwise) new_batcher(settings) else NULL
  state
}

#' Whether model.R declares its prediction row-wise (D9: `rowwise <- TRUE`): predicting
#' stacked rows gives the row-wise concatenation of predicting each part, one result per row
#' that depends on that row only. Only then may concurrent requests share one call.
#' @param user the user's environment, or NULL.
#' @keywords internal
user_rowwise <- function(user) {
  !is.null(user) && exists("rowwise", envir = user, inherits = FALSE) && isTRUE(user[["rowwise"]])
}

#' The start-up log line's words on batching (D9).
#' @keywords internal
batching_status <- function(rowwise, settings) {
  if (identical(settings$batching, "off")) return("batching off (ROSETTA_BATCHING=off)")
  if (!isTRUE(rowwise)) return("batching off: predict is not declared row-wise (rowwise <- TRUE in model.R)")
  if (!identical(settings$batching, "on")) {
    return("batching off: plumber's asynchronous responses cost more than shared calls save (ROSETTA_BATCHING=on to batch)")
  }
  sprintf("batching on: up to %d rows per predict call, wait %g ms (ROSETTA_BATCH_MAX_ROWS, ROSETTA_BATCH_WAIT_MS)",
          settings$batch_max_rows, settings$batch_wait_ms)
}

#' Load settings, user code and the model, then run one warm-up prediction (contract §2,
#' S-07). The request columns come from rosetta.json (D2), or, for a model loaded by the
#' user's `load_model` without training here, from the user's declarations.
#' @param dir the model directory.
#' @param settings the serving settings (`serving_settings()`).
#' @param user the user's environment (default: model.R loaded now, NULL without one);
#'   multi-model mode loads it once and passes it for every model.
#' @return the server state (an environment, see `new_state()`).
#' @keywords internal
load_state <- function(dir = model_dir(), settings = serving_settings(),
                       user = if (file.exists(program_file())) load_user() else NULL) {
  model <- load_fitted(user, dir)
  meta <- model_meta(dir)
  features <- meta$features
  n <- meta$n_features
  if (is.null(meta$runtime)) {  # no rosetta.json
    features <- user_declared(user, "feature_names", model)
    n <- user_declared(user, "n_features", model)
  }
  state <- new_state(model, user, features, n, settings)
  if (!is.null(state$n_features)) {
    sample <- as_model_input(matrix(0, nrow = 1, ncol = state$n_features), state$features)
    invisible(predict_records(state, sample))
  }
  state$ready <- TRUE
  state
}

#' Numeric matrix → the data.frame R models expect: columns named by the request columns
#' (D2), else V1..Vn.
#' @keywords internal
as_model_input <- function(m, features = NULL) {
  if (is.matrix(m)) {
    # column by column: as.data.frame() on a matrix costs more than parsing a small request
    cols <- lapply(seq_len(ncol(m)), function(j) m[, j])
    names(cols) <- if (!is.null(features) && length(features) == ncol(m)) features else paste0("V", seq_len(ncol(m)))
    return(structure(cols, class = "data.frame", row.names = .set_row_names(nrow(m))))
  }
  df <- as.data.frame(m)
  if (!is.null(features) && length(features) == ncol(df)) names(df) <- features
  df
}

#' Predict with the user's `predict_model(model, X)` or R's `predict()` generic.
#' @keywords internal
predict_records <- function(state, X) {
  hook <- state$predict_model
  if (!is.null(hook)) hook(state$model, X) else stats::predict(state$model, X)
}

#' The number of records of a model input: rows of a matrix or data.frame, else NA (D3:
#' the one-output-per-record check runs whenever it is known).
#' @keywords internal
input_records <- function(X) if (is.data.frame(X) || is.matrix(X)) nrow(X) else NA_integer_

# -- the foreign server (the rpy2 flavour): the Python runtime's routes call these -----------
# Errors come back as the condition (not raised): the server sends the first line of its
# message (D3), whatever rpy2 would make of an R error.

#' The user's environment for the Python server: model.R loaded once, or NULL without one.
#' @keywords internal
foreign_user <- function() if (file.exists(program_file())) load_user() else NULL

#' Predict for the Python server: a numeric matrix from its codecs gets the request columns
#' (D2); what the user's `input_fn` returned goes to the model as it is. The predictions come
#' back as plain vectors or matrices (factors → labels, data frames → matrices); the raw
#' predictions stay in `state$last_predictions` for `output_fn`.
#' @param state the server state (see `load_state()`).
#' @param X a numeric matrix (records × features), or the user's `input_fn` result.
#' @param user_input TRUE when `X` came from `input_fn`.
#' @return the predictions, or the error condition.
#' @keywords internal
predict_matrix <- function(state, X, user_input = FALSE) {
  tryCatch({
    if (!user_input) X <- as_model_input(X, state$features)
    p <- predict_records(state, X)
    state$last_predictions <- p
    p <- as_records(p)
    if (is.data.frame(p)) p <- as.matrix(p)
    p
  }, error = function(e) e)
}

#' Call the user's `input_fn` for the Python server.
#' @return `list(value, dim)`: the model input (NULL: not handled) and its `dim()` (the
#'   record count check needs the rows, D3); or the error condition.
#' @keywords internal
foreign_input <- function(state, body, content_type) {
  tryCatch({
    x <- state$input_fn(body, content_type)
    list(x, dim(x))
  }, error = function(e) e)
}

#' Call the user's `output_fn` on the last predictions for the Python server.
#' @return `list(body, content_type)`, NULL (not handled), or the error condition.
#' @keywords internal
foreign_output <- function(state, accept) {
  tryCatch(state$output_fn(state$last_predictions, accept), error = function(e) e)
}
