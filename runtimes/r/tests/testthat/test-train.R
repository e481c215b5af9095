# The training entry in-process on a temporary /opt/ml: success, and the failure file with
# the reason first on every failure path (T-16, T-17).
failure <- function(root) readLines(file.path(root, "output", "failure"))

test_that("training saves model.rds and rosetta.json with the request columns (D2)", {
  root <- with_ml_root({
    expect_equal(train_main(exit = FALSE), 0L)
    meta <- jsonlite::fromJSON(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model", "rosetta.json"))
    expect_equal(meta$runtime, "r")
    expect_equal(meta$n_features, 4L)
    expect_equal(meta$features, c("sepal_length", "sepal_width", "petal_length", "petal_width"))
    expect_true(file.exists(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model", "model.rds")))
    expect_equal(Sys.getenv("SM_CHANNEL_TRAIN"), file.path(Sys.getenv("ROSETTA_ML_ROOT"), "input", "data", "train"))
    expect_equal(jsonlite::fromJSON(Sys.getenv("SM_HPS")), list(ntree = 5L))  # given ones only
    expect_equal(Sys.getenv("SM_HP_NTREE"), "5")
  }, hyperparameters = list(ntree = "5"), channels = list(train = list(iris.csv = iris_csv())), model_r = IRIS_MODEL_R)
})

test_that("a bad hyperparameter: HyperparameterError first", {
  with_ml_root({
    expect_equal(suppressMessages(train_main(exit = FALSE)), 1L)
    lines <- failure(Sys.getenv("ROSETTA_ML_ROOT"))
    expect_equal(lines[1], "HyperparameterError: ntree: expected an integer, got 'abc'")
    expect_equal(lines[2], "")
  }, hyperparameters = list(ntree = "abc"), channels = list(train = list(iris.csv = iris_csv())), model_r = IRIS_MODEL_R)
})

test_that("a missing channel: DataError first", {
  with_ml_root({
    unlink(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "input", "data", "train"), recursive = TRUE)
    expect_equal(suppressMessages(train_main(exit = FALSE)), 1L)
    expect_match(failure(Sys.getenv("ROSETTA_ML_ROOT"))[1], "^DataError: channel 'train' is configured but .* has no such folder$")
  }, channels = list(train = list(iris.csv = iris_csv())), model_r = IRIS_MODEL_R)
})

test_that("an error in fit: UserCodeError quoting the condition", {
  with_ml_root({
    expect_equal(suppressMessages(train_main(exit = FALSE)), 1L)
    lines <- failure(Sys.getenv("ROSETTA_ML_ROOT"))
    expect_equal(lines[1], "UserCodeError: simpleError: boom")
    expect_true(any(grepl("fit", lines[-1])))
  }, channels = list(train = list(iris.csv = iris_csv())), model_r = "fit <- function(data, hyperparameters) stop('boom')")
})

test_that("an interrupt (SIGTERM via the forwarder) calls checkpoint and writes Stopped", {
  with_ml_root({
    expect_equal(suppressMessages(train_main(exit = FALSE)), 143L)
    root <- Sys.getenv("ROSETTA_ML_ROOT")
    expect_equal(failure(root)[1], "Stopped: received SIGTERM")
    expect_true(file.exists(file.path(root, "checkpoints", "saved")))
  }, channels = list(train = list(a.csv = "x\n1")), model_r = '
fit <- function(data, hyperparameters) { rlang_interrupt() }
rlang_interrupt <- function() signalCondition(structure(class = c("interrupt", "condition"), list(message = "", call = NULL)))
checkpoint <- function(checkpoint_dir) writeLines("x", file.path(checkpoint_dir, "saved"))
')
})

test_that("log_metric prints the T-20 line", {
  expect_output(log_metric("val:acc", 0.5), "^#metric val:acc=0.5$")
})

test_that("data: channels by [[ and $, names, paths; unreadable channel is a DataError", {
  with_ml_root({
    data <- r("channel_data")()
    expect_equal(sort(names(data)), c("empty", "train"))
    expect_equal(nrow(data$train), 150L)
    expect_equal(names(data[["train"]])[5], "species")
    expect_equal(unname(attr(data, "paths")[["train"]]), file.path(Sys.getenv("ROSETTA_ML_ROOT"), "input", "data", "train"))
    err <- tryCatch(data[["empty"]], error = function(e) e)
    expect_s3_class(err, "rosetta_DataError")
    expect_equal(conditionMessage(err), "channel 'empty' has no .csv files (found: readme.txt)")
    expect_s3_class(tryCatch(data[["nope"]], error = function(e) e), "rosetta_DataError")
  }, channels = list(train = list(iris.csv = iris_csv()), empty = list(readme.txt = "nothing")))
})

D2_MODEL <- '
hyperparameters <- list(target = "y", subset = FALSE)
fit <- function(data, hyperparameters) {
  df <- data[["train"]]
  cols <- if (hyperparameters$subset) c("a", "y") else names(df)
  stats::lm(y ~ ., data = df[cols])
}
'

test_that("D2: request columns = the table read minus target, whatever the model uses; a declaration wins", {
  meta <- function() jsonlite::fromJSON(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model", "rosetta.json"))
  csv <- list(train = list("t.csv" = "a,b,y,c\n1,2,3,4\n2,3,5,1\n3,1,4,2\n4,4,8,3\n5,2,7,1"))
  with_ml_root({
    expect_equal(suppressMessages(train_main(exit = FALSE)), 0L)
    expect_equal(meta()$features, c("a", "b", "c"))  # not the lm's terms: the training table minus y
    state <- r("load_state")(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model"))
    res <- r("dispatch")(request(body = "1,2,3", headers = list("Content-Type" = "text/csv")), state)
    expect_equal(res$status, 200L)
    expect_match(res$body, "^[0-9.e+-]+\n$")
    res <- r("dispatch")(request(body = "1,2", headers = list("Content-Type" = "text/csv")), state)
    expect_equal(res$body, "row 1 has 2 columns, expected 3\n")
  }, hyperparameters = list(subset = "true"), channels = csv, model_r = D2_MODEL)
  with_ml_root({  # target names no column: unknown columns, n_features NULL
    expect_equal(suppressMessages(train_main(exit = FALSE)), 0L)
    expect_null(meta()$features)
    expect_null(meta()$n_features)
  }, hyperparameters = list(target = "zzz"), channels = list(train = list("t.csv" = "a,zz\n1,2\n2,3")),
     model_r = 'hyperparameters <- list(target = "y")\nfit <- function(data, hyperparameters) { data$train; list(k = 1) }')
  with_ml_root({  # a declaration wins; a one-element list stays a list
    expect_equal(suppressMessages(train_main(exit = FALSE)), 0L)
    raw <- readLines(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model", "rosetta.json"))
    expect_equal(meta()$features, "b")
    expect_true(any(grepl('"features": \\["b"\\]', raw)))
    expect_equal(meta()$n_features, 1L)
  }, channels = csv, model_r = paste(D2_MODEL, 'feature_names.lm <- function(model) "b"'))
  with_ml_root({  # no table read: the user n_features()
    expect_equal(suppressMessages(train_main(exit = FALSE)), 0L)
    expect_null(meta()$features)
    expect_equal(meta()$n_features, 7L)
  }, channels = csv, model_r = 'fit <- function(data, hyperparameters) list(k = 1)\nn_features <- function(model) 7L')
})

test_that("D4: every .csv file of a channel, recursively, sorted; one header; others ignored", {
  with_ml_root({
    data <- r("channel_data")()
    expect_equal(data$train$a, c(1L, 2L, 3L))
    expect_equal(data$other$a, 1L)
    err <- tryCatch(data$bad, error = function(e) e)
    expect_s3_class(err, "rosetta_DataError")
    expect_equal(conditionMessage(err), "channel 'bad': b.csv has columns a, c but a.csv has a, b")
  }, channels = list(train = list("b/2.CSV" = "a,b\n3,4", "a.csv" = "a,b\n1,2", "b/1.csv" = "a,b\n2,3",
                                  "notes.txt" = "x", ".hidden.csv" = "z\n9"),
                     other = list("x/y/z.csv" = "a\n1"),
                     bad = list("a.csv" = "a,b\n1,2", "b.csv" = "a,c\n1,2")))
})
