# Iris classifier for the Rosetta R runtime: a random forest. Write fit(); serving uses
# randomForest's predict() method. Train: `docker run IMAGE train`; serve: `IMAGE serve`.
library(randomForest)

# defaults and types of the hyperparameters (hyperparameters.json values are strings)
hyperparameters <- list(ntree = 100L, target = "species", seed = 42L)

fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  target <- hyperparameters$target
  df[[target]] <- factor(df[[target]])
  set.seed(hyperparameters$seed)
  model <- randomForest(stats::reformulate(".", response = target), data = df,
                        ntree = hyperparameters$ntree)
  log_metric("train:oob_error", tail(model$err.rate[, "OOB"], 1))
  model
}
