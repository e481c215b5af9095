# "As shipped": the AWS r_bring_your_own serving setup, for the benchmark baseline only.
# One plumber process from plumb(), default filters and JSON serializer, no TCP_NODELAY.
# Run: Rscript -e 'pr <- plumber::plumb("/bench/as_shipped.R"); pr$run(host = "0.0.0.0", port = 8080)'
library(randomForest)
model <- readRDS("/opt/ml/model/model.rds")
features <- rownames(model$importance)

#* @get /ping
function() ""

#* @post /invocations
function(req) {
  data <- read.csv(text = req$postBody, header = FALSE, col.names = features)
  as.character(predict(model, data))
}
