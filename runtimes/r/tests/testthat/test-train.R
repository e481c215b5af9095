# The training entry in-process on a temporary /opt/ml: success, and the failure file with
# the reason first on every failure path (T-16, T-17).
failure <- function(root) readLines(file.path(root, "output", "failure"))

test_that("training saves model.rds and rosetta.json with n_features", {
  root <- with_ml_root({
    expect_equal(train_main(exit = FALSE), 0L)
    meta <- jsonlite::fromJSON(file.path(Sys.getenv("ROSETTA_ML_ROOT"), "model", "rosetta.json"))
    expect_equal(meta$runtime, "r")
    expect_equal(meta$n_features, 4L)
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
    expect_match(failure(Sys.getenv("ROSETTA_ML_ROOT"))[1], "^DataError: channel 'train' is missing")
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
    expect_match(conditionMessage(err), "channel 'empty' has no CSV files")
    expect_s3_class(tryCatch(data[["nope"]], error = function(e) e), "rosetta_DataError")
  }, channels = list(train = list(iris.csv = iris_csv()), empty = list(readme.txt = "nothing")))
})
