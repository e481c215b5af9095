# Toy model for the image tests (the same behaviour as ../python/model.py and ../julia/model.jl).
# Training: hyperparameter `mode` = "ok" (a model), "fail" (stops with "toy exploded"), "slow"
# (prints "fitting", then runs until SIGTERM; `checkpoint` writes ckpt.txt = "saved"), and, R only,
# "blocked" (prints "fitting", then waits in compiled code: system("sleep 60") never sees SIGINT).
# Serving: `load_model` waits TOY_LOAD_SECONDS; `predict` sums each row of 2 features, after
# sleeping -X[1, 1] seconds when that value is negative.

hyperparameters <- list(mode = "ok")

fit <- function(data, hyperparameters) {
  mode <- hyperparameters$mode
  if (mode == "fail") stop("toy exploded")
  if (mode == "slow") { cat("fitting\n"); for (i in 1:6000) Sys.sleep(0.1) }
  if (mode == "blocked") { cat("fitting\n"); system("sleep 60") }
  structure(list(), class = "toy")
}

checkpoint <- function(checkpoint_dir) writeLines("saved", file.path(checkpoint_dir, "ckpt.txt"))

load_model <- function(model_dir) {
  Sys.sleep(as.numeric(Sys.getenv("TOY_LOAD_SECONDS", "0")))
  structure(list(), class = "toy")
}

n_features.toy <- function(model) 2L

predict.toy <- function(object, newdata, ...) {
  if (newdata[1, 1] < 0) Sys.sleep(-newdata[1, 1])
  rowSums(newdata)
}
