# The golden cases (conformance/golden/README.md, D5), run in-process: every setup of
# serving.json is trained once with this runtime's `train_main()`, every case served through
# `dispatch()` by a state built with the case's env (settings are read at start), every
# case of training.json trained on its own temporary /opt/ml, and every case of
# multimodel.json (D6) run step by step against a fresh multi-model state with an empty
# registry (its models copied from the trained serving setups). A case listed in
# expected-differences/r.json must fail (with its reason); one that passes fails the suite,
# so the list cannot go stale.
#
# The folder: ROSETTA_GOLDEN_DIR, else conformance/golden of this checkout, else
# /rosetta-golden (mounted by tests/test_r_unit.py), else the copy shipped in the image.

golden_dir <- function() {
  here <- normalizePath(testthat::test_path("."), mustWork = FALSE)
  candidates <- c(Sys.getenv("ROSETTA_GOLDEN_DIR"), file.path(here, "..", "..", "..", "..", "conformance", "golden"),
                  "/rosetta-golden", "/usr/local/share/rosetta/golden")
  found <- candidates[nzchar(candidates) & file.exists(file.path(candidates, "serving.json"))]
  if (length(found)) normalizePath(found[1]) else NULL
}

GOLDEN <- golden_dir()
read_golden <- function(name) jsonlite::fromJSON(file.path(GOLDEN, name), simplifyVector = FALSE)

# -- comparing ---------------------------------------------------------------------------------

#' Parsed JSON `actual` against `expected` (from the case file): numbers with a relative
#' tolerance of 1e-9, everything else exactly; objects and arrays element by element.
#' @return NULL when equal, else a description.
json_diff <- function(actual, expected, where = "") {
  shown <- function(x) as.character(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null", digits = NA))
  differ <- function() sprintf("%s: %s, expected %s", if (nzchar(where)) where else "value", shown(actual), shown(expected))
  if (is.null(expected)) return(if (is.null(actual)) NULL else differ())
  if (is.list(expected)) {
    if (!is.list(actual) || is.null(names(expected)) != is.null(names(actual)) || length(actual) != length(expected)) return(differ())
    keys <- if (is.null(names(expected))) seq_along(expected) else names(expected)
    if (!is.null(names(expected)) && !setequal(names(actual), names(expected))) return(differ())
    for (k in keys) {
      d <- json_diff(actual[[k]], expected[[k]], paste0(where, "[", k, "]"))
      if (!is.null(d)) return(d)
    }
    return(NULL)
  }
  if (is.numeric(expected)) {
    a <- suppressWarnings(as.numeric(actual))
    ok <- length(a) == 1 && !is.na(a) && (!is.character(actual) || nzchar(actual)) && !is.logical(actual) &&
      (a == expected || abs(a - expected) <= 1e-9 * max(abs(a), abs(expected)))
    return(if (ok) NULL else differ())
  }
  if (identical(actual, expected)) NULL else differ()
}

#' The output records of a response body, each a list of values (a scalar record is a
#' one-element list): CSV lines split on `,`; JSON `{"predictions": [...]}`; JSON Lines.
response_records <- function(text, media) {
  as_record <- function(v) if (is.list(v) && is.null(names(v))) v else list(v)
  lines <- function() { l <- strsplit(text, "\n", fixed = TRUE)[[1]]; l[nzchar(l)] }
  switch(media,
    "text/csv" = lapply(lines(), function(l) as.list(strsplit(l, ",", fixed = TRUE)[[1]])),
    "application/json" = lapply(jsonlite::parse_json(text, simplifyVector = FALSE)$predictions, as_record),
    "application/jsonlines" = lapply(lines(), function(l) as_record(jsonlite::parse_json(l, simplifyVector = FALSE))),
    stop(sprintf("no records in a '%s' body", media)))
}

#' The number of output records of a body, without reading them (bodies of a million lines).
record_count <- function(text, media) {
  if (media == "application/json") return(length(jsonlite::parse_json(text, simplifyVector = FALSE)$predictions))
  if (!(media %in% c("text/csv", "application/jsonlines"))) stop(sprintf("no records in a '%s' body", media))
  sum(nzchar(strsplit(text, "\n", fixed = TRUE)[[1]]))
}

SERVING_EXPECT <- c("status", "message", "message_pattern", "content_type", "headers", "body", "records", "json", "json_keys",
                    "record_count")
TRAINING_EXPECT <- c("exit", "failure", "failure_pattern", "seen", "rosetta_json", "files")

#' What is wrong with a response (`dispatch()`'s list) given a case's `expect`; empty when nothing.
serving_problems <- function(res, expect) {
  problems <- character(0)
  add <- function(...) problems <<- c(problems, sprintf(...))
  unknown <- setdiff(names(expect), SERVING_EXPECT)
  if (length(unknown)) add("this runner does not know expect.%s", paste(unknown, collapse = ", expect."))
  raw <- if (is.raw(res$body)) res$body else charToRaw(enc2utf8(paste(res$body, collapse = "")))
  text <- rawToChar(raw)
  Encoding(text) <- "UTF-8"
  ctype <- res$headers[["Content-Type"]] %||% ""
  media <- tolower(trimws(strsplit(ctype, ";", fixed = TRUE)[[1]][1] %||% ""))
  if (!identical(as.integer(res$status), as.integer(expect[["status"]]))) {
    add("status %s, expected %s (body: %s)", res$status, expect[["status"]], substr(text, 1, 200))
  }
  if (!is.null(expect[["message"]])) {
    if (!identical(text, paste0(expect[["message"]], "\n"))) add("body %s, expected the message %s", encodeString(substr(text, 1, 300), quote = "'"), encodeString(expect[["message"]], quote = "'"))
    if (!identical(ctype, "text/plain; charset=utf-8")) add("content type '%s' for a message", ctype)
  }
  if (!is.null(expect[["message_pattern"]])) {
    first <- strsplit(text, "\n", fixed = TRUE)[[1]][1] %||% ""
    if (!grepl(paste0("^(?:", expect[["message_pattern"]], ")$"), first, perl = TRUE)) add("first line '%s' does not match /%s/", first, expect[["message_pattern"]])
  }
  if (!is.null(expect[["content_type"]]) && !identical(media, expect[["content_type"]])) add("content type '%s', expected '%s'", ctype, expect[["content_type"]])
  for (name in names(expect[["headers"]])) {
    got <- res$headers[tolower(names(res$headers)) == tolower(name)]
    if (!length(got) || !identical(as.character(got[[1]]), expect[["headers"]][[name]])) add("header %s: '%s', expected '%s'", name, if (length(got)) got[[1]] else "(absent)", expect[["headers"]][[name]])
  }
  if (!is.null(expect[["body"]]) && !identical(text, expect[["body"]])) add("body '%s', expected '%s'", substr(text, 1, 300), expect[["body"]])
  if (!is.null(expect[["json"]])) {
    got <- tryCatch(jsonlite::parse_json(text, simplifyVector = FALSE), error = function(e) NULL)
    for (k in names(expect[["json"]])) {
      d <- json_diff(got[[k]], expect[["json"]][[k]], k)
      if (!is.null(d)) add("json %s", d)
    }
  }
  if (!is.null(expect[["json_keys"]])) {
    got <- tryCatch(names(jsonlite::parse_json(text, simplifyVector = FALSE)), error = function(e) NULL)
    if (!setequal(got, unlist(expect[["json_keys"]]))) add("JSON keys %s, expected %s", paste(got, collapse = ", "), paste(unlist(expect[["json_keys"]]), collapse = ", "))
  }
  if (!is.null(expect[["record_count"]])) {
    n <- tryCatch(record_count(text, media), error = function(e) e)
    if (inherits(n, "error")) add("cannot count records: %s", conditionMessage(n))
    else if (n != expect[["record_count"]]) add("%d records, expected %d", n, expect[["record_count"]])
  }
  if (!is.null(expect[["records"]])) {
    records <- tryCatch(response_records(text, media), error = function(e) e)
    if (inherits(records, "error")) {
      add("cannot read records: %s", conditionMessage(records))
    } else {
      d <- json_diff(records, expect[["records"]], "records")
      if (!is.null(d)) add("%s", d)
    }
  }
  problems
}

#' What is wrong with a training run (its /opt/ml root and exit status) given `expect`.
training_problems <- function(root, status, expect) {
  problems <- character(0)
  add <- function(...) problems <<- c(problems, sprintf(...))
  unknown <- setdiff(names(expect), TRAINING_EXPECT)
  if (length(unknown)) add("this runner does not know expect.%s", paste(unknown, collapse = ", expect."))
  failure_file <- file.path(root, "output", "failure")
  failure <- if (file.exists(failure_file)) readLines(failure_file, warn = FALSE)[1] else NA_character_
  if (!identical(as.integer(status), as.integer(expect[["exit"]]))) add("exit %s, expected %s (failure: %s)", status, expect[["exit"]], failure)
  if (!is.null(expect[["failure"]]) && !identical(failure, expect[["failure"]])) add("failure '%s', expected '%s'", failure, expect[["failure"]])
  if (!is.null(expect[["failure_pattern"]]) && !isTRUE(grepl(paste0("^(?:", expect[["failure_pattern"]], ")$"), failure, perl = TRUE))) {
    add("failure '%s' does not match /%s/", failure, expect[["failure_pattern"]])
  }
  compare_file <- function(key, path) {
    if (is.null(expect[[key]])) return()
    got <- if (file.exists(path)) jsonlite::fromJSON(path, simplifyVector = FALSE) else NULL
    if (is.null(got)) return(add("%s: %s was not written", key, basename(path)))
    for (k in names(expect[[key]])) {
      d <- json_diff(got[[k]], expect[[key]][[k]], k)
      if (!is.null(d)) add("%s %s", key, d)
    }
  }
  compare_file("seen", file.path(root, "output", "data", "seen.json"))
  compare_file("rosetta_json", file.path(root, "model", "rosetta.json"))
  for (f in unlist(expect[["files"]])) if (!file.exists(file.path(root, f))) add("%s was not written", f)
  problems
}

# -- running -----------------------------------------------------------------------------------

#' Environment variables a case may set; the others are unset while a state is built.
SERVING_VARS <- c("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "SAGEMAKER_MAX_PAYLOAD_IN_MB", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
                  "SAGEMAKER_BATCH_STRATEGY", "SAGEMAKER_MODEL_SERVER_WORKERS", "ROSETTA_WORKERS", "ROSETTA_CSV_HEADER",
                  "SAGEMAKER_BATCH", "SAGEMAKER_MULTI_MODEL", "ROSETTA_MME_MEMORY_MB", "ROSETTA_MME_STATE_DIR",
                  "ROSETTA_BATCHING", "ROSETTA_BATCH_MAX_ROWS", "ROSETTA_BATCH_WAIT_MS")

write_text <- function(path, text) {
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  writeBin(charToRaw(enc2utf8(text)), path)
}

#' A fresh /opt/ml for a training case or a serving setup: hyperparameters.json, inputdataconfig.json,
#' resourceconfig.json (D7: absent → single host, null → no file), checkpointconfig.json (D8, `{ml}`
#' replaced by the root) and the channels' files, each written exactly.
golden_ml_root <- function(spec) {
  root <- tempfile("golden-ml")
  dir.create(file.path(root, "input", "config"), recursive = TRUE)
  json <- function(x) if (length(x)) as.character(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null", digits = NA)) else "{}"
  config <- function(name, value) write_text(file.path(root, "input", "config", name), json(value))
  config("hyperparameters.json", spec[["hyperparameters"]])
  channels <- spec[["channels"]]
  config("inputdataconfig.json", spec[["inputdataconfig"]] %||% stats::setNames(lapply(names(channels), function(ch) list(
    ContentType = "text/csv", TrainingInputMode = "File", S3DistributionType = "FullyReplicated")), names(channels)))
  if (!("resourceconfig" %in% names(spec))) {
    config("resourceconfig.json", list(current_host = "algo-1", hosts = list("algo-1"), network_interface_name = "eth0"))
  } else if (!is.null(spec[["resourceconfig"]])) {
    config("resourceconfig.json", spec[["resourceconfig"]])
  }
  if (!is.null(spec[["checkpointconfig"]])) {
    config("checkpointconfig.json", rapply(spec[["checkpointconfig"]], function(s) gsub("{ml}", root, s, fixed = TRUE),
                                           classes = "character", how = "replace"))
  }
  for (ch in names(channels)) {
    dir.create(file.path(root, "input", "data", ch), recursive = TRUE, showWarnings = FALSE)
    for (f in names(channels[[ch]])) write_text(file.path(root, "input", "data", ch, f), channels[[ch]][[f]])
  }
  root
}

#' Run `train` on `root` with the fixture `program`, in this process; the exit status.
golden_run <- function(root, program) {
  before <- Sys.getenv()
  on.exit({  # the SM_* variables training set must not leak into the next case
    after <- Sys.getenv()
    added <- setdiff(names(after), names(before))
    Sys.unsetenv(added[startsWith(added, "SM_")])
  })
  with_env(list(ROSETTA_ML_ROOT = root, ROSETTA_CODE_DIR = file.path(GOLDEN, "models", "r", program),
                ROSETTA_PROGRAM = NA, SAGEMAKER_PROGRAM = NA, ROSETTA_MODEL_DIR = NA), {
    code <- NULL
    utils::capture.output(code <- suppressMessages(train_main(exit = FALSE)))
    code
  })
}

#' Train a serving setup (or a one-run training case) on a fresh /opt/ml: list(root, status).
golden_train <- function(spec) {
  root <- golden_ml_root(spec)
  list(root = root, status = golden_run(root, spec[["program"]]))
}

SETUPS <- new.env()
STATES <- new.env()

#' A serving.json setup, trained once: list(root, status); an error when it did not train.
golden_trained <- function(setups, name) {
  if (is.null(SETUPS[[name]])) {
    s <- setups[[name]]
    if (is.null(s)) stop(sprintf("no setup '%s' in serving.json", name))
    SETUPS[[name]] <- golden_train(s)
  }
  trained <- SETUPS[[name]]
  if (!identical(trained$status, 0L)) {
    stop(sprintf("setup '%s' did not train (exit %s): %s", name, trained$status,
                 paste(readLines(file.path(trained$root, "output", "failure"), warn = FALSE)[1], collapse = "")))
  }
  trained
}

#' The server state of a case: its setup trained once, the state built once per env.
golden_state <- function(setups, case) {
  name <- case$setup
  trained <- golden_trained(setups, name)
  env <- case$env %||% list()
  key <- paste(name, as.character(jsonlite::toJSON(env, auto_unbox = TRUE)))
  if (is.null(STATES[[key]])) {
    vars <- stats::setNames(as.list(rep(NA, length(SERVING_VARS))), SERVING_VARS)
    vars[names(env)] <- env
    vars$ROSETTA_CODE_DIR <- file.path(GOLDEN, "models", "r", setups[[name]]$program)
    vars$ROSETTA_ML_ROOT <- trained$root
    vars[c("ROSETTA_PROGRAM", "SAGEMAKER_PROGRAM", "ROSETTA_MODEL_DIR")] <- NA
    STATES[[key]] <- with_env(vars, r("load_state")(file.path(trained$root, "model")))
  }
  STATES[[key]]
}

#' A case's request as the routing table's request list.
golden_request <- function(req) {
  unknown <- setdiff(names(req), c("method", "path", "headers", "body", "body_b64", "body_repeat"))
  if (length(unknown)) stop(sprintf("this runner does not know request.%s", paste(unknown, collapse = ", request.")))
  body <- if (!is.null(req[["body_b64"]])) jsonlite::base64_dec(req[["body_b64"]]) else charToRaw(enc2utf8(req[["body"]] %||% ""))
  if (!is.null(req[["body_repeat"]])) body <- rep(body, req[["body_repeat"]])
  headers <- req$headers %||% list()
  names(headers) <- tolower(names(headers))
  q <- regexpr("?", req$path, fixed = TRUE)
  path <- if (q > 0) substr(req$path, 1, q - 1) else req$path
  query <- if (q > 0) substring(req$path, q + 1) else ""
  list(method = req$method, path = path, query = query, headers = headers, body = body)
}

# -- multi-model mode (D6) ---------------------------------------------------------------------

MODELS_ROOTS <- new.env()

#' A multi-model setup's models root (README: multimodel.json), made once: every model at
#' `<root>/<name>/model`, a copy of a trained serving.json setup's model folder (corrupted or
#' padded as asked), or an empty folder.
golden_models_root <- function(serving_setups, mm_setups, name) {
  if (is.null(MODELS_ROOTS[[name]])) {
    root <- tempfile("golden-models")
    for (model in names(mm_setups[[name]]$models)) {
      spec <- mm_setups[[name]]$models[[model]]
      folder <- file.path(root, model, "model")
      dir.create(folder, recursive = TRUE)
      if (isTRUE(spec$empty)) next
      trained <- file.path(golden_trained(serving_setups, spec$setup)$root, "model")
      file.copy(list.files(trained, full.names = TRUE, all.files = TRUE, no.. = TRUE), folder, recursive = TRUE)
      if (isTRUE(spec$corrupt)) {
        for (f in list.files(folder, recursive = TRUE, full.names = TRUE)) {
          if (basename(f) != "rosetta.json") writeBin(charToRaw("not a model\n"), f)
        }
      }
      if (!is.null(spec$pad_mb)) {  # sparse: sizes are apparent sizes
        con <- file(file.path(folder, "padding.bin"), "wb")
        seek(con, spec$pad_mb * 1024^2 - 1, rw = "write")
        writeBin(as.raw(0), con)
        close(con)
      }
    }
    MODELS_ROOTS[[name]] <- normalizePath(root)
  }
  MODELS_ROOTS[[name]]
}

#' Replace `{models}` in every string of `x` (a request body or an expect list).
substitute_models <- function(x, root) {
  if (is.character(x)) return(gsub("{models}", root, x, fixed = TRUE))
  if (is.list(x)) return(rapply(x, function(s) gsub("{models}", root, s, fixed = TRUE), classes = "character", how = "replace"))
  x
}

#' Run a multi-model case: a fresh server state (no model, an empty registry), then its steps
#' in order through `dispatch()`; the problems of the first failing step.
golden_multimodel <- function(serving_setups, mm_setups, case) {
  setup <- mm_setups[[case$setup]]
  root <- golden_models_root(serving_setups, mm_setups, case$setup)
  registry <- tempfile("golden-registry")
  on.exit(unlink(registry, recursive = TRUE))
  vars <- stats::setNames(as.list(rep(NA, length(SERVING_VARS))), SERVING_VARS)
  vars[names(case$env)] <- case$env
  vars$ROSETTA_CODE_DIR <- file.path(GOLDEN, "models", "r", setup$program)
  vars$ROSETTA_MME_STATE_DIR <- registry
  vars[c("ROSETTA_PROGRAM", "SAGEMAKER_PROGRAM", "ROSETTA_MODEL_DIR")] <- NA
  with_env(vars, {
    settings <- r("serving_settings")()
    if (!isTRUE(settings$multi_model)) return("SAGEMAKER_MULTI_MODEL did not turn multi-model mode on")
    state <- r("load_mme_state")(settings)
    r("registry_reset")(settings$mme_state_dir)
    for (i in seq_along(case$steps)) {
      step <- case$steps[[i]]
      req <- step$request
      req$body <- substitute_models(req$body, root)
      res <- suppressMessages(r("dispatch")(golden_request(req), state))
      if (promises::is.promising(res)) return(sprintf("step %d: a promise, not a response", i))
      problems <- serving_problems(res, substitute_models(step$expect, root))
      if (length(problems)) return(sprintf("step %d (%s %s): %s", i, req$method, req$path, problems))
    }
    character(0)
  })
}

EXPECTED_DIFFERENCES <- if (!is.null(GOLDEN) && file.exists(file.path(GOLDEN, "expected-differences", "r.json"))) {
  read_golden(file.path("expected-differences", "r.json"))
} else list()

#' One expectation for a case: no problems, or, for an expected difference, some.
expect_case <- function(id, problems) {
  reason <- EXPECTED_DIFFERENCES[[id]]
  if (is.null(reason)) {
    expect(length(problems) == 0, paste0(id, ":\n  ", paste(problems, collapse = "\n  ")))
  } else {
    expect(length(problems) > 0, sprintf("%s passes but expected-differences/r.json lists it (%s): remove it", id, reason))
  }
  invisible(length(problems) == 0)
}

TALLY <- new.env()
tally <- function(kind, id, passed) {
  key <- paste(kind, if (passed) "passed" else if (!is.null(EXPECTED_DIFFERENCES[[id]])) "expected" else "failed")
  TALLY[[key]] <- (TALLY[[key]] %||% 0L) + 1L
}

# -- the tests ---------------------------------------------------------------------------------

test_that("the golden case files are found (set ROSETTA_GOLDEN_DIR or mount conformance/golden at /rosetta-golden)", {
  expect(!is.null(GOLDEN), "conformance/golden not found")
  expect(file.exists(file.path(GOLDEN %||% "", "training.json")), "training.json not found")
})

if (!is.null(GOLDEN)) {
  serving <- read_golden("serving.json")
  training <- if (file.exists(file.path(GOLDEN, "training.json"))) read_golden("training.json") else list(cases = list())
  multimodel <- if (file.exists(file.path(GOLDEN, "multimodel.json"))) read_golden("multimodel.json") else list(cases = list())
  ids <- c(vapply(serving$cases, function(c) c$id, ""), vapply(training$cases, function(c) c$id, ""),
           vapply(multimodel$cases, function(c) c$id, ""))

  test_that("expected-differences/r.json: every entry names a case and gives a reason", {
    expect(!anyDuplicated(ids), sprintf("duplicate case ids: %s", paste(ids[duplicated(ids)], collapse = ", ")))
    for (id in names(EXPECTED_DIFFERENCES)) {
      reason <- EXPECTED_DIFFERENCES[[id]]
      expect(id %in% ids, sprintf("expected-differences/r.json names '%s', which is no case", id))
      expect(is.character(reason) && length(reason) == 1 && nzchar(trimws(reason)), sprintf("'%s' has no reason", id))
    }
  })

  for (case in serving$cases) {
    local({
      case <- case
      test_that(sprintf("golden serving %s (%s)", case$id, case$clause %||% ""), {
        problems <- tryCatch({
          state <- golden_state(serving$setups, case)
          res <- suppressMessages(r("dispatch")(golden_request(case$request), state))
          serving_problems(res, case$expect)
        }, error = function(e) paste("error:", conditionMessage(e)))
        tally("serving", case$id, expect_case(case$id, problems))
      })
    })
  }

  for (case in training$cases) {
    local({
      case <- case
      test_that(sprintf("golden training %s (%s)", case$id, case$clause %||% ""), {
        problems <- tryCatch({
          root <- golden_ml_root(case)
          on.exit(unlink(root, recursive = TRUE))
          # `runs` (D8): train again on the same /opt/ml, its model and output removed, checkpoints kept
          runs <- case[["runs"]] %||% list(list(expect = case[["expect"]]))
          unlist(lapply(seq_along(runs), function(i) {
            if (i > 1) unlink(file.path(root, c("model", "output")), recursive = TRUE)
            status <- golden_run(root, case[["program"]])
            problems <- training_problems(root, status, runs[[i]][["expect"]])
            if (length(runs) > 1 && length(problems)) paste0("run ", i, ": ", problems) else problems
          }))
        }, error = function(e) paste("error:", conditionMessage(e)))
        tally("training", case$id, expect_case(case$id, problems))
      })
    })
  }

  for (case in multimodel$cases) {
    local({
      case <- case
      test_that(sprintf("golden multi-model %s", case$id), {
        problems <- tryCatch(golden_multimodel(serving$setups, multimodel$setups, case),
                             error = function(e) paste("error:", conditionMessage(e)))
        tally("multimodel", case$id, expect_case(case$id, problems))
      })
    })
  }

  test_that("golden tally", {
    counts <- unlist(as.list(TALLY))
    cat(sprintf("\nGOLDEN %s\n", paste(sprintf("%s=%d", gsub(" ", "_", names(counts)), counts)[order(names(counts))], collapse = " ")))
    expect(sum(counts) == length(ids), sprintf("%d of %d golden cases ran", sum(counts), length(ids)))
  })
}
