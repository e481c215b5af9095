# The constant model of the cross-language table: the same fixed vector for every row, in all three
# languages (bench/models/constant/{python,r,julia}), so the table compares servers, not models.
constant <- c(0.25, 0.25, 0.5)

fit <- function(data, hyperparameters) {
  list(constant = constant)
}

predict_model <- function(model, X) {
  matrix(model$constant, nrow = nrow(X), ncol = length(model$constant), byrow = TRUE)
}

# one fixed row per input row: row-wise by construction (D9)
rowwise <- TRUE
