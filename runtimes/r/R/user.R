# The user's model.R: sourced into its own environment; the runtime looks up `fit`,
# `hyperparameters` and the optional hooks there (contract §2).

hook_names <- c("fit", "predict_model", "input_fn", "output_fn", "save_model", "load_model", "checkpoint")

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
  if (exists("hyperparameters", envir = env, inherits = FALSE)) {
    d <- env[["hyperparameters"]]
    if (is.list(d)) return(d)
  }
  NULL
}
