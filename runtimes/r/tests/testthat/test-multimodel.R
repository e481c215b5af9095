# Multi-model mode (D6) beyond the golden cases: several workers (server states) sharing one
# registry behave as one server; reservations of loads in progress; the memory budget counts
# every worker. Each "worker" here is a full multi-model state, as each R process builds one.

MM_MODEL_R <- '
load_model <- function(dir) jsonlite::fromJSON(file.path(dir, "params.json"))
predict_model <- function(model, X) rowSums(as.matrix(X)) * model$scale
'

#' A models root with models `names` (scale 1, 2, ...), and a fresh registry; `code` runs
#' with both and the multi-model environment set.
with_models <- function(names, code, env = list()) {
  root <- tempfile("mm-models")
  for (i in seq_along(names)) {
    dir <- file.path(root, names[i], "model")
    dir.create(dir, recursive = TRUE)
    writeLines(sprintf('{"scale": %d}', i), file.path(dir, "params.json"))
    writeLines('{"runtime": "r", "features": null, "n_features": 3}', file.path(dir, "rosetta.json"))
  }
  code_dir <- file.path(root, ".code")
  dir.create(code_dir)
  writeLines(MM_MODEL_R, file.path(code_dir, "model.R"))
  registry <- file.path(root, ".registry")
  on.exit(unlink(root, recursive = TRUE))
  with_env(list(SAGEMAKER_MULTI_MODEL = "true", ROSETTA_MME_STATE_DIR = registry, ROSETTA_CODE_DIR = code_dir,
                  ROSETTA_WORKERS = "2", ROSETTA_MME_MEMORY_MB = NA) |> modifyList(env), {
    r("registry_reset")(registry)
    code(root)
  })
}

worker <- function() r("load_mme_state")(r("serving_settings")())
load_req <- function(name, url) request("POST", "/models", sprintf('{"model_name": "%s", "url": "%s"}', name, url))
invoke_req <- function(name, body = "1,2,3\n") request("POST", sprintf("/models/%s/invoke", name), body, list("Content-Type" = "text/csv"))
call <- function(state, req) suppressMessages(r("dispatch")(req, state))
listed <- function(state) {
  vapply(jsonlite::fromJSON(call(state, request("GET", "/models"))$body, simplifyVector = FALSE)$models, function(m) m$modelName, "")
}

test_that("a model loaded through one worker is served by every worker, an unload is seen everywhere", {
  with_models(c("a", "b"), function(root) {
    w1 <- worker()
    w2 <- worker()
    expect_equal(call(w1, load_req("a", file.path(root, "a", "model")))$status, 200L)
    expect_equal(call(w2, request("GET", "/models/a"))$status, 200L)
    expect_equal(listed(w2), "a")
    res <- call(w2, invoke_req("a"))  # w2 loads it on its first request
    expect_equal(res$status, 200L)
    expect_equal(res$body, "6\n")
    expect_equal(call(w2, load_req("a", file.path(root, "b", "model")))$status, 409L)  # across workers
    expect_equal(call(w1, request("DELETE", "/models/a"))$status, 200L)
    expect_equal(call(w2, invoke_req("a"))$status, 404L)
    expect_false(exists("a", envir = w2$mme$held, inherits = FALSE))  # dropped, not only hidden
    expect_equal(listed(w2), character(0))
    # loaded again under the same name from another folder: every worker serves the new one
    expect_equal(call(w2, load_req("a", file.path(root, "b", "model")))$status, 200L)
    expect_equal(call(w1, invoke_req("a"))$body, "12\n")
    expect_equal(call(w2, invoke_req("a"))$body, "12\n")
  })
})

test_that("a load in progress takes the name but is not served", {
  with_models("a", function(root) {
    w1 <- worker()
    url <- file.path(root, "a", "model")
    reserve <- function(pid) {
      r("registry_update")(w1$mme$folder, function(state) {
        state$loading[["a"]] <- list(pid = pid, cost = 1)
        state
      })
    }
    reserve(Sys.getpid())  # a live worker is loading "a"
    expect_equal(call(w1, load_req("a", url))$status, 409L)
    expect_equal(call(w1, request("GET", "/models/a"))$status, 404L)
    expect_equal(call(w1, invoke_req("a"))$status, 404L)
    expect_equal(listed(w1), character(0))
  })
})

test_that("a dead worker's reservation does not keep the name", {
  with_models("a", function(root) {
    w1 <- worker()
    pid <- as.integer(system2("sh", c("-c", shQuote("echo $$")), stdout = TRUE))  # exited and reaped
    r("registry_update")(w1$mme$folder, function(state) {
      state$loading[["a"]] <- list(pid = pid, cost = 1e12)
      state
    })
    expect_equal(call(w1, load_req("a", file.path(root, "a", "model")))$status, 200L)
  })
})

test_that("the memory budget counts every worker's copy and frees with an unload", {
  with_models(c("a", "b"), function(root) {
    # 1 MiB of padding per model, 2 workers: each model costs at least 2 MiB of the 3
    for (n in c("a", "b")) {
      con <- file(file.path(root, n, "model", "padding.bin"), "wb")
      seek(con, 1024^2 - 1, rw = "write")
      writeBin(as.raw(0), con)
      close(con)
    }
    w1 <- worker()
    expect_equal(call(w1, load_req("a", file.path(root, "a", "model")))$status, 200L)
    res <- call(w1, load_req("b", file.path(root, "b", "model")))
    expect_equal(res$status, 507L)
    expect_equal(res$body, "not enough memory to load model 'b'\n")
    expect_equal(call(w1, request("DELETE", "/models/a"))$status, 200L)
    expect_equal(call(w1, load_req("b", file.path(root, "b", "model")))$status, 200L)
  }, env = list(ROSETTA_MME_MEMORY_MB = "3"))
})

test_that("settings: the budget defaults to a share of the memory limit; a bad value is refused", {
  with_env(list(SAGEMAKER_MULTI_MODEL = "true", ROSETTA_MME_MEMORY_MB = NA), {
    s <- r("serving_settings")()
    expect_true(s$multi_model)
    expect_equal(s$mme_memory_bytes, floor(r("memory_limit")() * 0.8))
  })
  with_env(list(SAGEMAKER_MULTI_MODEL = "true", ROSETTA_MME_MEMORY_MB = "-1"), {
    expect_error(r("serving_settings")(), "ROSETTA_MME_MEMORY_MB")
  })
  with_env(list(SAGEMAKER_MULTI_MODEL = NA), expect_false(r("serving_settings")()$multi_model))
})
