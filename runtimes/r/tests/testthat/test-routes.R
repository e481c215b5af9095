# The routing table through dispatch() (pure R) and through the plumber router in-process.
iris_state <- function() {
  df <- datasets::iris
  names(df) <- c("sepal_length", "sepal_width", "petal_length", "petal_width", "species")
  state <- new.env()
  set.seed(1)
  state$model <- randomForest::randomForest(species ~ ., data = df, ntree = 10)
  state$user <- NULL
  state$n_features <- 4L
  state$features <- names(df)[1:4]
  state$ready <- TRUE
  state$workers <- 2L
  state
}
state <- iris_state()
go <- function(...) r("dispatch")(request(...), state)
body_of <- function(res) if (is.raw(res$body)) rawToChar(res$body) else res$body

test_that("ping, 404, 405 with Allow", {
  expect_equal(go("GET", "/ping")$status, 200L)
  expect_equal(go("HEAD", "/ping")$status, 200L)
  res <- go("GET", "/nope")
  expect_equal(c(res$status, body_of(res)), c("404", "not found\n"))
  res <- go("POST", "/ping")
  expect_equal(res$status, 405L)
  expect_equal(res$headers$Allow, "GET, HEAD")
  expect_equal(go("GET", "/invocations")$status, 405L)
  loading <- new.env(); loading$ready <- FALSE
  res <- r("dispatch")(request("GET", "/ping"), loading)
  expect_equal(c(res$status, body_of(res)), c("503", "model is loading\n"))
})

test_that("invocations: CSV default, JSON, JSON Lines; no Accept means the request type", {
  res <- go(body = "5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1", headers = list("Content-Type" = "text/csv"))
  expect_equal(res$status, 200L)
  expect_equal(res$headers[["Content-Type"]], "text/csv")
  expect_equal(body_of(res), "setosa\nvirginica\n")
  res <- go(body = "[[5.1,3.5,1.4,0.2]]", headers = list("Content-Type" = "application/json"))
  expect_equal(body_of(res), "{\"predictions\":[\"setosa\"]}")
  res <- go(body = "[5.1,3.5,1.4,0.2]\n", headers = list("Content-Type" = "application/jsonlines", Accept = "text/csv"))
  expect_equal(c(res$headers[["Content-Type"]], body_of(res)), c("text/csv", "setosa\n"))
  res <- go(body = "5.1,3.5,1.4,0.2", headers = list())  # no Content-Type: CSV
  expect_equal(body_of(res), "setosa\n")
})

test_that("invocations: 415, 406, 400, 413 in the contract's words", {
  res <- go(body = "x", headers = list("Content-Type" = "text/plain"))
  expect_equal(res$status, 415L)
  expect_equal(body_of(res), "unsupported Content-Type 'text/plain'; accepted: text/csv, application/json, application/jsonlines\n")
  res <- go(body = "1,2,3,4", headers = list("Content-Type" = "text/csv", Accept = "image/png"))
  expect_equal(res$status, 406L)
  expect_equal(body_of(res), "cannot produce 'image/png'; available: text/csv, application/json, application/jsonlines\n")
  res <- go(body = "1,2,3", headers = list("Content-Type" = "text/csv"))
  expect_equal(c(res$status, body_of(res)), c("400", "row 1 has 3 columns, expected 4\n"))
  res <- go(body = "", headers = list("Content-Type" = "text/csv", "Content-Length" = "7000000"))
  expect_equal(c(res$status, body_of(res)), c("413", "payload too large: 7000000 bytes > limit 6291456 bytes\n"))
})

test_that("a failing model is a 500 naming only the error class", {
  broken <- iris_state()
  broken$model <- structure(list(), class = "broken_model")
  registerS3method("predict", "broken_model", function(object, ...) stop("kaput"), envir = asNamespace("stats"))
  res <- r("dispatch")(request(body = "1,2,3,4", headers = list("Content-Type" = "text/csv")), broken)
  expect_equal(c(res$status, body_of(res)), c("500", "model error: simpleError\n"))
})

test_that("execution-parameters caps workers x payload at 100", {
  res <- go("GET", "/execution-parameters")
  expect_equal(jsonlite::fromJSON(body_of(res)), list(MaxConcurrentTransforms = 2L, BatchStrategy = "MULTI_RECORD", MaxPayloadInMB = 2L))
  withr_env <- Sys.getenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", NA)
  Sys.setenv(SAGEMAKER_MAX_PAYLOAD_IN_MB = "60", SAGEMAKER_MAX_CONCURRENT_TRANSFORMS = "4")
  on.exit(Sys.unsetenv(c("SAGEMAKER_MAX_PAYLOAD_IN_MB", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")))
  expect_equal(jsonlite::fromJSON(body_of(go("GET", "/execution-parameters")))$MaxConcurrentTransforms, 1L)
  Sys.setenv(SAGEMAKER_MAX_PAYLOAD_IN_MB = "1")
  params <- jsonlite::fromJSON(body_of(go("GET", "/execution-parameters")))
  expect_equal(c(params$MaxPayloadInMB, params$MaxConcurrentTransforms), c(1L, 4L))
  expect_equal(r("payload_limit")(), 6 * 1024 * 1024)  # the body limit never drops below 6 MiB (S-12)
})

test_that("the plumber router answers through the same table (in-process request)", {
  router <- r("build_router")(state)
  call <- function(method, path, body = "", ctype = "text/csv") {
    env <- new.env()
    env$REQUEST_METHOD <- method
    env$PATH_INFO <- path
    env$QUERY_STRING <- ""
    env$CONTENT_TYPE <- ctype
    env$HTTP_ACCEPT <- "text/csv"
    raw_body <- charToRaw(body)
    env$rook.input <- list(read = function(...) raw_body, rewind = function() NULL, read_lines = function() body)
    router$call(env)
  }
  res <- call("POST", "/invocations", "5.1,3.5,1.4,0.2")
  expect_equal(res$status, 200L)
  expect_equal(rawToChar(if (is.raw(res$body)) res$body else charToRaw(res$body)), "setosa\n")
  expect_equal(call("GET", "/nothing")$status, 404L)
  expect_equal(call("DELETE", "/invocations")$status, 405L)
})

test_that("requests from httpuv: headers come from HEADERS, the body is read once", {
  reads <- 0L
  env <- new.env()
  env$REQUEST_METHOD <- "POST"
  env$PATH_INFO <- "/invocations"
  env$HEADERS <- c("content-type" = "application/json", accept = "text/csv", "content-length" = "9")
  env$rook.input <- list(read = function(...) { reads <<- reads + 1L; charToRaw("[1,2,3,4]") })
  req <- r("from_plumber")(env)
  expect_equal(req$headers[["content-type"]], "application/json")
  expect_equal(req$headers[["accept"]], "text/csv")
  expect_equal(rawToChar(req$body), "[1,2,3,4]")
  expect_equal(reads, 1L)
  expect_equal(length(r("from_plumber")(list2env(list(REQUEST_METHOD = "GET", PATH_INFO = "/ping")))$body), 0L)
})

test_that("model input: a data.frame with the feature names, one row per record", {
  X <- r("as_model_input")(matrix(c(1, 2, 3, 4, 5, 6), nrow = 3), c("a", "b"))
  expect_s3_class(X, "data.frame")
  expect_equal(dim(X), c(3L, 2L))
  expect_equal(names(X), c("a", "b"))
  expect_equal(X$b, c(4, 5, 6))
  expect_equal(X, data.frame(a = c(1, 2, 3), b = c(4, 5, 6)))
  expect_equal(names(r("as_model_input")(matrix(1:4 + 0, nrow = 1))), c("V1", "V2", "V3", "V4"))
})

test_that("user input_fn / output_fn / predict_model hooks are used (after the 415/406 checks)", {
  hooked <- iris_state()
  hooked$user <- new.env()
  hooked$user$input_fn <- function(body, content_type) {
    text <- rawToChar(body)
    if (!grepl(" ", text, fixed = TRUE)) return(NULL)  # not ours: the codec registry decodes
    as.data.frame(matrix(as.numeric(strsplit(text, " ")[[1]]), nrow = 1, dimnames = list(NULL, hooked$features)))
  }
  hooked$user$output_fn <- function(predictions, accept) {
    if (accept != "application/json") return(NULL)
    list(toupper(paste(as.character(predictions), collapse = "|")), "text/x-upper")
  }
  res <- r("dispatch")(request(body = "5.1 3.5 1.4 0.2", headers = list("Content-Type" = "text/csv", Accept = "application/json")), hooked)
  expect_equal(c(res$status, body_of(res), res$headers[["Content-Type"]]), c("200", "SETOSA", "text/x-upper"))
  res <- r("dispatch")(request(body = "5.1,3.5,1.4,0.2", headers = list("Content-Type" = "text/csv", Accept = "text/csv")), hooked)
  expect_equal(c(res$status, body_of(res)), c("200", "setosa\n"))
  expect_equal(r("dispatch")(request(body = "1 2", headers = list("Content-Type" = "text/plain")), hooked)$status, 415L)
  hooked$user$output_fn <- NULL
  hooked$user$predict_model <- function(model, X) rep("always", nrow(X))
  res <- r("dispatch")(request(body = "1,2,3,4\n1,2,3,4", headers = list("Content-Type" = "text/csv")), hooked)
  expect_equal(body_of(res), "always\nalways\n")
})
