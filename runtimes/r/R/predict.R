# Prediction: the user's `predict_model(model, X)` or R's `predict()` generic on a
# data.frame whose columns carry the model's feature names (contract §2).

#' Numeric matrix → the data.frame R models expect (named columns).
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

#' Predict with the user's hook or `predict()`.
#' @keywords internal
predict_records <- function(state, X) {
  hook <- user_hook(state$user, "predict_model")
  if (!is.null(hook)) hook(state$model, X) else stats::predict(state$model, X)
}

#' Load user code and the model, then run one warm-up prediction (contract §2, S-07).
#' @param dir the model directory.
#' @return the server state (an environment).
#' @keywords internal
load_state <- function(dir = model_dir()) {
  state <- new.env()
  state$ready <- FALSE
  state$user <- if (file.exists(program_file())) load_user() else NULL
  state$model <- load_fitted(state$user, dir)
  meta <- model_meta(dir)
  state$n_features <- meta$n_features %||% tryCatch(n_features(state$model), error = function(e) NULL)
  state$features <- meta$features %||% tryCatch(feature_names(state$model), error = function(e) NULL)
  # settings read once: the environment does not change while serving
  state$payload_limit <- payload_limit()
  state$default_accept <- Sys.getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "")
  state$workers <- env_int("ROSETTA_WORKERS", env_int("SAGEMAKER_MODEL_SERVER_WORKERS", parallel::detectCores()))
  if (!is.null(state$n_features)) {
    sample <- as_model_input(matrix(0, nrow = 1, ncol = state$n_features), state$features)
    invisible(predict_records(state, sample))
  }
  state$ready <- TRUE
  state
}

#' Predict a numeric matrix for a foreign server (the rpy2 flavour): named columns in,
#' plain vectors or matrices out (factors → labels, data frames → matrices).
#' @param state the server state (see `load_state()`).
#' @param X a numeric matrix (records × features), or whatever the user's `input_fn` returned.
#' @keywords internal
predict_matrix <- function(state, X) {
  if (is.matrix(X) && is.numeric(X)) X <- as_model_input(X, state$features)
  p <- as_records(predict_records(state, X))
  if (is.data.frame(p)) p <- as.matrix(p)
  p
}
