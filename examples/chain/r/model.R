# Chain step 1 (R): standardise the iris features with the training split's mean and standard
# deviation. Requests carry the four feature columns (the training table minus `target`, D2); the
# answer is the same four columns, standardised, one row per request row (text/csv by default).

hyperparameters <- list(target = "species")

fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  X <- as.matrix(df[setdiff(names(df), hyperparameters$target)])
  structure(list(mu = colMeans(X), sigma = apply(X, 2, sd)), class = "standardiser")
}

predict.standardiser <- function(object, newdata, ...) {
  sweep(sweep(as.matrix(newdata), 2, object$mu, "-"), 2, object$sigma, "/")
}
