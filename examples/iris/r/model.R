# Iris classifier for the Rosetta R runtime: a random forest. Only fit() is needed; serving
# calls randomForest's predict() method on rows named like the training columns.
library(randomForest)

# defaults and types of the hyperparameters (hyperparameters.json values are strings)
hyperparameters <- list(ntree = 100L, target = "species", seed = 42L)

fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  target <- hyperparameters$target
  features <- setdiff(names(df), target)
  set.seed(hyperparameters$seed)
  # the x/y interface: predict() skips the formula machinery (about 2x faster per request)
  model <- randomForest(x = df[features], y = factor(df[[target]]), ntree = hyperparameters$ntree)
  log_metric("train:oob_error", tail(model$err.rate[, "OOB"], 1))
  model
}
