# Iris classifier for the Rosetta R runtime: a random forest. fit() is all that is required.
# Requests carry the training table's columns minus the `target` hyperparameter (D2): the runtime
# learns them from data[["train"]] and names the request's columns after them, so nothing else is
# declared here (a model that wants other columns would define feature_names(model)).
library(randomForest)

rowwise <- TRUE  # predict_model() is row-wise: concurrent requests may share one call (D9)
# defaults and types of the hyperparameters (hyperparameters.json values are strings)
hyperparameters <- list(ntree = 100L, target = "species", seed = 42L)

fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  features <- setdiff(names(df), hyperparameters$target)
  set.seed(hyperparameters$seed)
  # the x/y interface: predict() skips the formula machinery (about 2x faster per request)
  model <- randomForest(x = df[features], y = factor(df[[hyperparameters$target]]), ntree = hyperparameters$ntree)
  log_metric("train:oob_error", tail(model$err.rate[, "OOB"], 1))
  model
}

# optional: predict() breaks tied votes at random; take the first class so that the same
# row always gets the same label (batch transform, B-08). A numeric matrix skips
# randomForest's data.frame checks, which cost more than the 100 trees for one row.
predict_model <- function(model, X) {
  votes <- predict(model, as.matrix(X), type = "vote")
  colnames(votes)[max.col(votes, ties.method = "first")]
}
