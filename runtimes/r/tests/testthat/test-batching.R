# Adaptive batching (D9). Differential: mixed good and bad requests sent by 8 concurrent
# keep-alive clients to a real batching worker (plumber over TCP, a child process) get byte for
# byte the answers one client gets from the same program with ROSETTA_BATCHING=off. The
# model's prediction takes a few milliseconds (so requests queue) and appends the ids of the
# rows of every call to a file, which shows that calls were shared and rows never crossed.

BATCH_MODEL_R <- '
rowwise <- TRUE
load_model <- function(dir) list(scale = 1.5)
n_features <- function(model) 3L
predict_model <- function(model, X) {
  X <- as.matrix(X)
  Sys.sleep(0.003)  # a model call\'s fixed cost: concurrent requests queue behind it
  log <- Sys.getenv("BATCH_CALLS")
  if (nzchar(log)) cat(paste(X[, 1], collapse = " "), "\\n", file = log, append = TRUE, sep = "")
  if (any(X == -999)) stop("boom")
  out <- cbind(unname(X[, 1]), unname(rowSums(X)) * model$scale)  # unname: a 1-row X[, 1] is named
  if (any(X == -1)) out <- out[-nrow(out), , drop = FALSE]
  out
}
'

#' The mixed requests of client `i`: one to three good rows (first column: a unique id),
#' undecodable rows (400), a model error (500), a miscount (500), JSON in and out.
mixed_requests <- function(i, n = 24) {
  lapply(seq_len(n), function(k) {
    id <- i * 1000 + k * 10
    rows <- function(m) paste0(sprintf("%d,%d,2\n", id + seq_len(m) - 1, k), collapse = "")
    switch(as.character(k %% 8),
      "0" = list(body = sprintf("%d,-999,0\n", id), type = "text/csv"),
      "3" = list(body = sprintf("%d,x,0\n", id), type = "text/csv"),
      "5" = list(body = sprintf("%d,-1,0\n%d,1,1\n", id, id + 1), type = "text/csv"),
      "6" = list(body = sprintf('{"instances": [[%d, 1, 2], [%d, 3, 4]]}', id, id + 1), type = "application/json",
                 accept = "application/json"),
      "7" = list(body = sprintf("%d,1\n", id), type = "text/csv"),  # wrong width: 400
      list(body = rows(1 + k %% 3), type = "text/csv", accept = if (k %% 2) "text/csv" else "application/jsonlines"))
  })
}

#' Start a plumber worker (a child Rscript) on a free local port; its port and pid.
start_worker <- function(code_dir, model_dir, env = character(0)) {
  port <- as.integer(20000 + sample.int(20000, 1))
  ready <- tempfile("ready")
  system2("Rscript", c("--no-save", "-e", shQuote("rosetta::serve_worker()")), wait = FALSE,
          stdout = FALSE, stderr = FALSE,
          env = c(sprintf("ROSETTA_CODE_DIR=%s", code_dir), sprintf("ROSETTA_MODEL_DIR=%s", model_dir),
                  sprintf("SAGEMAKER_BIND_TO_PORT=%d", port), sprintf("ROSETTA_READY_FILE=%s", ready), env))
  deadline <- Sys.time() + 60
  while (!file.exists(ready) && Sys.time() < deadline) Sys.sleep(0.05)
  if (!file.exists(ready)) stop("the worker did not start")
  list(port = port, pid = as.integer(readLines(ready)))
}

#' One HTTP/1.1 request on an open keep-alive connection: list(status, type, body).
http_call <- function(con, req) {
  body <- charToRaw(req$body)
  head <- sprintf("POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n",
                  req$type, if (is.null(req$accept)) "" else sprintf("Accept: %s\r\n", req$accept), length(body))
  writeBin(c(charToRaw(head), body), con)
  got <- raw(0)
  while (length(got) < 4 || !identical(got[(length(got) - 3):length(got)], charToRaw("\r\n\r\n"))) {
    b <- readBin(con, "raw", 1L)
    if (!length(b)) stop("connection closed")
    got <- c(got, b)
  }
  lines <- strsplit(rawToChar(got), "\r\n", fixed = TRUE)[[1]]
  field <- function(name) {
    hit <- grep(paste0("^", name, ":"), lines, ignore.case = TRUE, value = TRUE)
    if (length(hit)) trimws(sub("^[^:]*:", "", hit[1])) else NA_character_
  }
  n <- as.integer(field("Content-Length"))
  list(status = as.integer(strsplit(lines[1], " ", fixed = TRUE)[[1]][2]), type = field("Content-Type"),
       body = if (n > 0) rawToChar(readBin(con, "raw", n)) else "")
}

#' Send each client's requests in order on its own connection, the clients at once (forked).
send_all <- function(port, requests, clients = length(requests)) {
  parallel::mclapply(seq_along(requests), function(i) {
    con <- socketConnection("127.0.0.1", port, blocking = TRUE, open = "r+b", timeout = 60)
    on.exit(close(con))
    lapply(requests[[i]], function(req) http_call(con, req))
  }, mc.cores = clients)
}

test_that("concurrent mixed requests get exactly the unbatched answers; calls are shared, rows never cross", {
  root <- tempfile("batching")
  code <- file.path(root, "code")
  model <- file.path(root, "model")
  dir.create(code, recursive = TRUE)
  dir.create(model)
  writeLines(BATCH_MODEL_R, file.path(code, "model.R"))
  writeLines('{"runtime": "r", "features": null, "n_features": 3}', file.path(model, "rosetta.json"))
  calls <- file.path(root, "calls.log")
  on.exit(unlink(root, recursive = TRUE))
  on <- start_worker(code, model, c(sprintf("BATCH_CALLS=%s", calls), "ROSETTA_BATCHING=on"))
  on.exit(tools::pskill(on$pid), add = TRUE)
  off <- start_worker(code, model, "ROSETTA_BATCHING=off")
  on.exit(tools::pskill(off$pid), add = TRUE)

  requests <- lapply(1:8, mixed_requests)
  expected <- send_all(off$port, list(unlist(requests, recursive = FALSE)), 1)[[1]]
  got <- unlist(send_all(on$port, requests), recursive = FALSE)
  expect_equal(length(got), length(expected))
  for (j in seq_along(expected)) {
    if (!identical(got[[j]], expected[[j]])) {
      fail(sprintf("request %d (%s): batched %s, unbatched %s", j, unlist(requests, recursive = FALSE)[[j]]$body,
                   paste(unlist(got[[j]]), collapse = " | "), paste(unlist(expected[[j]]), collapse = " | ")))
    }
  }
  expect_true(all(vapply(got, function(g) g$status, 0L) %in% c(200L, 400L, 500L)))
  # every call's rows, by request: a call holding rows of two requests is a shared call
  ids <- lapply(strsplit(readLines(calls), " ", fixed = TRUE), function(x) as.numeric(x) %/% 10)
  shared <- vapply(ids, function(x) length(unique(x)) > 1, logical(1))
  expect_true(any(shared), info = "no prediction call served more than one request")
  # each good request's answer carries its own ids, in its order (rows never cross)
  flat <- unlist(requests, recursive = FALSE)
  for (j in which(vapply(got, function(g) g$status == 200L, logical(1)))) {
    sent <- if (flat[[j]]$type == "text/csv") {
      as.numeric(sub(",.*", "", strsplit(flat[[j]]$body, "\n")[[1]]))
    } else {
      jsonlite::fromJSON(flat[[j]]$body)$instances[, 1]
    }
    answer <- got[[j]]$body
    firsts <- if (got[[j]]$type == "text/csv") {
      as.numeric(sub(",.*", "", strsplit(answer, "\n")[[1]]))
    } else if (got[[j]]$type == "application/json") {
      vapply(jsonlite::fromJSON(answer, simplifyVector = FALSE)$predictions, function(p) p[[1]], 0)
    } else {
      vapply(strsplit(answer, "\n")[[1]], function(l) jsonlite::fromJSON(l)[1], 0)
    }
    expect_equal(unname(firsts), sent)
  }
})

# -- the batcher itself, in-process ---------------------------------------------------------------

#' A state with the batch model (rowwise unless `rowwise = FALSE`).
batch_state <- function(rowwise = TRUE, settings = list()) {
  user <- new.env()
  eval(parse(text = BATCH_MODEL_R), envir = user)
  if (!rowwise) rm("rowwise", envir = user)
  s <- modifyList(r("serving_settings")(), modifyList(list(batching = "on"), settings))
  r("new_state")(list(scale = 1.5), user, NULL, 3L, s)
}

queue_of <- function(state, matrices) {
  results <- vector("list", length(matrices))
  items <- lapply(seq_along(matrices), function(i) {
    list(M = matrices[[i]], rows = nrow(matrices[[i]]), key = ncol(matrices[[i]]), arrived = Sys.time(),
         resolve = function(v) results[[i]] <<- v[[1]])
  })
  list(items = items, results = function() results)
}

test_that("a batch's result is cut back per request; a failing or miscounted batch is retried request by request", {
  state <- batch_state()
  alone <- function(M) tryCatch(r("predict_records")(state, r("as_model_input")(M)), error = function(e) e)
  for (bad in list(NULL, matrix(c(9, -999, 0), 1), matrix(c(9, -1, 0, 8, 1, 1), 2, byrow = TRUE))) {
    ms <- list(matrix(c(1, 2, 3), 1), matrix(c(4, 5, 6, 7, 8, 9), 2, byrow = TRUE), bad, matrix(c(10, 11, 12), 1))
    ms <- Filter(Negate(is.null), ms)
    q <- queue_of(state, ms)
    r("batch_run")(state, q$items)
    for (i in seq_along(ms)) {
      want <- alone(ms[[i]])
      got <- q$results()[[i]]
      if (inherits(want, "error")) expect_equal(conditionMessage(got), conditionMessage(want)) else expect_identical(got, want)
    }
  }
})

test_that("batches take the oldest request first, then later ones of its width within max_rows", {
  state <- batch_state(settings = list(batch_max_rows = 4L))
  b <- state$batcher
  ms <- list(matrix(1, 2, 3), matrix(2, 1, 2), matrix(3, 3, 3), matrix(4, 1, 3), matrix(5, 1, 2))
  b$queue <- queue_of(state, ms)$items
  first <- r("batch_take")(b)
  expect_equal(vapply(first, function(x) x$M[1], 0), 1)  # 2 + 3 > 4 and first come, first served
  expect_equal(vapply(b$queue, function(x) x$M[1], 0), c(2, 3, 4, 5))
  second <- r("batch_take")(b)
  expect_equal(vapply(second, function(x) x$M[1], 0), c(2, 5))  # width 2 together
  expect_equal(vapply(r("batch_take")(b), function(x) x$M[1], 0), c(3, 4))
})

test_that("batching needs the row-wise declaration and ROSETTA_BATCHING=on; an idle model predicts at once", {
  expect_null(batch_state(rowwise = FALSE)$batcher)
  expect_null(batch_state(settings = list(batching = "off"))$batcher)
  expect_null(batch_state(settings = list(batching = "auto"))$batcher)
  state <- batch_state()
  expect_false(is.null(state$batcher))
  expect_true(later::loop_empty())
  expect_null(r("batch_submit")(state, matrix(1, 1, 3)))  # nothing else waiting: no queue, no promise
  res <- suppressMessages(r("dispatch")(request(body = "1,2,3\n", headers = list("Content-Type" = "text/csv")), state))
  expect_equal(res$status, 200L)
  expect_match(r("batching_status")(FALSE, r("serving_settings")()), "not declared row-wise")
  expect_match(r("batching_status")(TRUE, list(batching = "auto")), "ROSETTA_BATCHING=on")
  expect_match(r("batching_status")(TRUE, list(batching = "on", batch_max_rows = 512L, batch_wait_ms = 0)), "^batching on")
})

test_that("bad batching settings are refused", {
  with_env(list(ROSETTA_BATCHING = "maybe"), expect_error(r("serving_settings")(), "ROSETTA_BATCHING"))
  with_env(list(ROSETTA_BATCH_MAX_ROWS = "0"), expect_error(r("serving_settings")(), "ROSETTA_BATCH_MAX_ROWS"))
  with_env(list(ROSETTA_BATCH_WAIT_MS = "-1"), expect_error(r("serving_settings")(), "ROSETTA_BATCH_WAIT_MS"))
  with_env(list(ROSETTA_BATCHING = NA, ROSETTA_BATCH_MAX_ROWS = NA, ROSETTA_BATCH_WAIT_MS = NA), {
    s <- r("serving_settings")()
    expect_equal(c(s$batching, s$batch_max_rows, s$batch_wait_ms), c("auto", "512", "0"))
  })
})
