# The routing table through dispatch() (pure R) and through the plumber router in-process.
iris_state <- function(user = NULL, env = list()) {
  df <- datasets::iris
  names(df) <- c("sepal_length", "sepal_width", "petal_length", "petal_width", "species")
  set.seed(1)
  model <- randomForest::randomForest(species ~ ., data = df, ntree = 10)
  settings <- with_env(c(list(ROSETTA_WORKERS = "2"), env), r("serving_settings")())
  state <- r("new_state")(model, user, names(df)[1:4], settings = settings)
  state$ready <- TRUE
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

test_that("a failing model is a 500 with the first line of its message (D3)", {
  broken <- iris_state()
  broken$model <- structure(list(), class = "broken_model")
  registerS3method("predict", "broken_model", function(object, ...) stop("kaput\nsecond line"), envir = asNamespace("stats"))
  res <- r("dispatch")(request(body = "1,2,3,4", headers = list("Content-Type" = "text/csv")), broken)
  expect_equal(c(res$status, body_of(res)), c("500", "model error: kaput\n"))
  registerS3method("predict", "broken_model", function(object, newdata, ...) rep(1, nrow(newdata) + 1), envir = asNamespace("stats"))
  res <- r("dispatch")(request(body = "1,2,3,4\n5,6,7,8", headers = list("Content-Type" = "text/csv")), broken)
  expect_equal(c(res$status, body_of(res)), c("500", "model error: predict returned 3 results for 2 records\n"))
})

test_that("execution-parameters caps workers x payload at 100; settings are read once", {
  res <- go("GET", "/execution-parameters")
  expect_equal(jsonlite::fromJSON(body_of(res)), list(MaxConcurrentTransforms = 2L, BatchStrategy = "MULTI_RECORD", MaxPayloadInMB = 2L))
  big <- iris_state(env = list(SAGEMAKER_MAX_PAYLOAD_IN_MB = "60", SAGEMAKER_MAX_CONCURRENT_TRANSFORMS = "4"))
  expect_equal(jsonlite::fromJSON(body_of(r("dispatch")(request("GET", "/execution-parameters"), big)))$MaxConcurrentTransforms, 1L)
  small <- iris_state(env = list(SAGEMAKER_MAX_PAYLOAD_IN_MB = "1", SAGEMAKER_MAX_CONCURRENT_TRANSFORMS = "4",
                                 SAGEMAKER_BATCH_STRATEGY = "SingleRecord"))
  params <- jsonlite::fromJSON(body_of(r("dispatch")(request("GET", "/execution-parameters"), small)))
  expect_equal(params, list(MaxConcurrentTransforms = 4L, BatchStrategy = "SINGLE_RECORD", MaxPayloadInMB = 1L))
  expect_equal(small$settings$max_body_bytes, 6 * 1024 * 1024)  # the body limit never drops below 6 MiB (S-12)
  # the environment is not read per request
  with_env(list(SAGEMAKER_MAX_PAYLOAD_IN_MB = "50"), {
    expect_equal(jsonlite::fromJSON(body_of(r("dispatch")(request("GET", "/execution-parameters"), small)))$MaxPayloadInMB, 1L)
  })
  err <- tryCatch(with_env(list(SAGEMAKER_MAX_PAYLOAD_IN_MB = "lots"), r("serving_settings")()), error = function(e) conditionMessage(e))
  expect_equal(err, "SAGEMAKER_MAX_PAYLOAD_IN_MB: expected an integer, got 'lots'")
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

test_that("user input_fn / output_fn / predict_model hooks are used", {
  user <- new.env()
  user$input_fn <- function(body, content_type) {
    text <- rawToChar(body)
    if (!grepl(" ", text, fixed = TRUE)) return(NULL)  # not ours: the codec registry decodes
    as.data.frame(matrix(as.numeric(strsplit(text, " ")[[1]]), nrow = 1,
                         dimnames = list(NULL, c("sepal_length", "sepal_width", "petal_length", "petal_width"))))
  }
  user$output_fn <- function(predictions, accept) {
    if (accept != "application/json") return(NULL)
    list(toupper(paste(as.character(predictions), collapse = "|")), "text/x-upper")
  }
  hooked <- iris_state(user)
  res <- r("dispatch")(request(body = "5.1 3.5 1.4 0.2", headers = list("Content-Type" = "text/csv", Accept = "application/json")), hooked)
  expect_equal(c(res$status, body_of(res), res$headers[["Content-Type"]]), c("200", "SETOSA", "text/x-upper"))
  res <- r("dispatch")(request(body = "5.1,3.5,1.4,0.2", headers = list("Content-Type" = "text/csv", Accept = "text/csv")), hooked)
  expect_equal(c(res$status, body_of(res)), c("200", "setosa\n"))
  # with input_fn any type reaches it: NULL for a type without a codec is a 415
  res <- r("dispatch")(request(body = "5.1 3.5 1.4 0.2", headers = list("Content-Type" = "text/plain")), hooked)
  # no Accept and no codec for the request's type: JSON is asked of output_fn
  expect_equal(c(res$status, body_of(res), res$headers[["Content-Type"]]), c("200", "SETOSA", "text/x-upper"))
  res <- r("dispatch")(request(body = "1,2", headers = list("Content-Type" = "text/plain")), hooked)
  expect_equal(res$status, 415L)
  user$predict_model <- function(model, X) rep("always", nrow(X))
  user$output_fn <- NULL
  res <- r("dispatch")(request(body = "1,2,3,4\n1,2,3,4", headers = list("Content-Type" = "text/csv")), iris_state(user))
  expect_equal(body_of(res), "always\nalways\n")
})

test_that("D3: errors of user hooks, 406 and output_fn, the record check before output_fn", {
  user <- new.env()
  user$input_fn <- function(body, content_type) if (content_type == "application/x-no") stop("input refused\nmore") else NULL
  user$output_fn <- function(predictions, accept) {
    if (accept == "application/x-no") stop("output refused")
    if (accept == "application/x-count") return(list(as.character(length(predictions)), accept))
    NULL
  }
  user$predict_model <- function(model, X) if (nrow(X) > 1) "one" else "x"
  hooked <- iris_state(user)
  call <- function(body, ...) {
    res <- r("dispatch")(request(body = body, headers = list(...)), hooked)
    c(res$status, body_of(res))
  }
  expect_equal(call("1,2,3,4", "Content-Type" = "application/x-no"), c("400", "cannot decode payload: input refused\n"))
  expect_equal(call("1,2,3,4", "Content-Type" = "text/csv", Accept = "application/x-no"), c("500", "model error: output refused\n"))
  expect_equal(call("1,2,3,4", "Content-Type" = "text/csv", Accept = "application/x-count"), c("200", "1"))
  expect_equal(call("1,2,3,4", "Content-Type" = "text/csv", Accept = "image/png"),
               c("406", "cannot produce 'image/png'; available: text/csv, application/json, application/jsonlines\n"))
  expect_equal(call("1,2,3,4\n1,2,3,4", "Content-Type" = "text/csv", Accept = "application/x-count"),
               c("500", "model error: predict returned 1 results for 2 records\n"))
  # without hooks: 415 and 406 come before decoding
  expect_equal(go(body = "{", headers = list("Content-Type" = "application/x-no"))$status, 415L)
  expect_equal(go(body = "x", headers = list("Content-Type" = "text/csv", Accept = "application/x-count"))$status, 406L)
})

test_that("D3: no Accept means SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else the request's type", {
  res <- go(body = "5.1,3.5,1.4,0.2", headers = list("Content-Type" = "text/csv", Accept = "*/*"))
  expect_equal(res$headers[["Content-Type"]], "text/csv")
  json <- iris_state(env = list(SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT = "application/json"))
  res <- r("dispatch")(request(body = "5.1,3.5,1.4,0.2", headers = list("Content-Type" = "text/csv")), json)
  expect_equal(c(res$headers[["Content-Type"]], body_of(res)), c("application/json", "{\"predictions\":[\"setosa\"]}"))
})

test_that("D1: a CSV header is dropped only when one is expected and the line is one", {
  call <- function(state, body, ctype = "text/csv") {
    res <- r("dispatch")(request(body = body, headers = list("Content-Type" = ctype)), state)
    c(res$status, body_of(res))
  }
  header <- "sepal_length,sepal_width,petal_length,petal_width\n"
  expect_equal(call(state, paste0(header, "5.1,3.5,1.4,0.2")),
               c("400", paste("row 1: 'sepal_length' is not a number (a header row? send 'Content-Type: text/csv;",
                              "header=present' or set ROSETTA_CSV_HEADER=true)\n")))
  expect_equal(call(state, paste0(header, "5.1,3.5,1.4,0.2"), "text/csv; header=present"), c("200", "setosa\n"))
  # a line of numbers is a record even when a header may come: nothing is lost
  expect_equal(call(state, "5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1", "text/csv; header=present"), c("200", "setosa\nvirginica\n"))
  expect_equal(call(state, header, "text/csv; header=present"), c("400", "empty payload\n"))
  headered <- iris_state(env = list(ROSETTA_CSV_HEADER = "true"))
  expect_equal(call(headered, paste0('"sepal_length", "sepal_width","petal_length","petal_width"\n', "5.1,3.5,1.4,0.2")), c("200", "setosa\n"))
  expect_equal(call(headered, "5.1,3.5,1.4,0.2"), c("200", "setosa\n"))
  expect_equal(call(headered, "5.1,3.5,1.4,0.2\n6.9,x,5.4,2.1"), c("400", "row 2: 'x' is not a number\n"))
  expect_equal(call(headered, paste0(header, "5.1,3.5,1.4,0.2"), "text/csv; header=absent")[1], "400")
})
