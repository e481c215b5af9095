# The user's model.R: sourced into its own environment; the runtime looks up `fit`,
# `hyperparameters`, the optional hooks and the optional declarations (`feature_names`,
# `n_features`) there (contract §2, D2). Saving and loading the model go through the user's
# hooks or saveRDS/readRDS.

hook_names <- c("fit", "predict_model", "input_fn", "output_fn", "save_model", "load_model", "checkpoint")
MODEL_FILE <- "model.rds"

#' Source the user's file into a fresh environment (child of the global env, so
#' `library()` calls in model.R work as usual).
#' @param path the file (default: `program_file()`).
#' @keywords internal
load_user <- function(path = program_file()) {
  if (!file.exists(path)) stop(sprintf("user code not found: %s", path), call. = FALSE)
  # model.R calls log_metric(), sm_env() ... unqualified, as after library(rosetta)
  if (!("package:rosetta" %in% search())) attachNamespace("rosetta")
  env <- new.env(parent = globalenv())
  sys.source(path, envir = env, keep.source = TRUE)
  register_user_methods(env)
  env
}

#' Register S3 methods defined in model.R (`predict.mymodel`, `n_features.mymodel`), so
#' the generics called from this package dispatch to them.
#' @keywords internal
register_user_methods <- function(env) {
  for (generic in c("predict", "n_features", "feature_names")) {
    for (name in grep(paste0("^", generic, "\\."), ls(env), value = TRUE)) {
      if (is.function(env[[name]])) {
        registerS3method(generic, sub(paste0("^", generic, "\\."), "", name), env[[name]],
                         envir = if (generic == "predict") asNamespace("stats") else asNamespace("rosetta"))
      }
    }
  }
}

#' A user hook (function) or NULL.
#' @keywords internal
user_hook <- function(env, name) {
  if (!is.null(env) && exists(name, envir = env, inherits = FALSE) && is.function(env[[name]])) env[[name]] else NULL
}

#' The user's declared hyperparameter defaults (a list) or NULL.
#' @keywords internal
user_defaults <- function(env) {
  if (!is.null(env) && exists("hyperparameters", envir = env, inherits = FALSE)) {
    d <- env[["hyperparameters"]]
    if (is.list(d)) return(d)
  }
  NULL
}

#' Names of the input columns a model expects, in order, as declared by user code.
#'
#' The runtime writes the request columns into `rosetta.json` at the end of training (D2):
#' a `feature_names()` declaration wins; without one, the columns of the training table
#' `fit` read minus the `target` hyperparameter. Declare it in model.R when requests carry
#' other columns: a function `feature_names <- function(model) ...`, or a method for your
#' model's class, `feature_names.myclass <- function(model) ...`. The default is NULL
#' (nothing declared); the runtime has no methods for model libraries.
#' @param model a fitted model.
#' @return a character vector, or NULL when not declared.
#' @export
feature_names <- function(model) UseMethod("feature_names")

#' @rdname feature_names
#' @export
feature_names.default <- function(model) NULL

#' Number of input columns a model expects, as declared by user code.
#'
#' Used when the request columns are not known by name (D2): no `feature_names()` and no
#' training table with a `target` column. Declare it in model.R as a function
#' `n_features <- function(model) ...` or a method `n_features.myclass`, and requests of
#' another width get a 400 (`row 1 has 3 columns, expected 4`). The default is NULL.
#' @param model a fitted model.
#' @return an integer, or NULL when not declared.
#' @export
n_features <- function(model) UseMethod("n_features")

#' @rdname n_features
#' @export
n_features.default <- function(model) NULL

#' The user's declaration for a model: the function `name` in model.R if defined, else the
#' package generic (S3 methods from model.R are registered on it). NULL when not declared.
#' @keywords internal
user_declared <- function(user, name, model) {
  fn <- user_hook(user, name) %||% getExportedValue("rosetta", name)
  fn(model)
}

#' Save the model with the user's `save_model(model, model_dir)` or `saveRDS` to `model.rds`.
#' @keywords internal
save_fitted <- function(model, user, dir = model_dir()) {
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  save <- user_hook(user, "save_model")
  if (is.null(save)) saveRDS(model, file.path(dir, MODEL_FILE)) else save(model, dir)
  invisible(dir)
}

#' Load the model with the user's `load_model(model_dir)` or `readRDS`.
#' @keywords internal
load_fitted <- function(user, dir = model_dir()) {
  load <- user_hook(user, "load_model")
  if (!is.null(load)) return(load(dir))
  path <- file.path(dir, MODEL_FILE)
  if (!file.exists(path)) stop(sprintf("no model at %s (train first, or define load_model)", path), call. = FALSE)
  readRDS(path)
}
