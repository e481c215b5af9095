# Multi-model mode (D6): models loaded, listed, described, unloaded and invoked by name, as
# the Python runtime's multimodel.py (the reference) and AWS's "custom containers contract
# for multi-model endpoints" (https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html).
#
# The R worker processes behave as one server through a registry in a folder they share
# (`ROSETTA_MME_STATE_DIR`):
# - `registry.json`: the loaded models (name, url, memory cost, load id) and the loads in
#   progress (name, worker pid, estimated cost), rewritten atomically (temporary file +
#   rename) while holding `lock.d` (a directory: mkdir is atomic; base R has no flock);
# - `generation`: a counter bumped after each change of the models (written after the
#   registry), so a request checks for news with one small read instead of parsing JSON.
# The worker that receives `POST /models` decides 409 and 507 under the lock (so across
# workers), reserves the name, loads, then registers the model. Another worker asked for a
# registered model it does not hold loads it first; a worker that sees a new generation drops
# what is no longer registered. Nothing is served before its load and warm-up are complete.
# /ping never waits for a load: nginx answers it (bin/serve), and nginx's least_conn sends
# other requests to a worker that is not busy loading.

MME_DEFAULT_LIMIT <- 100L
MME_MAX_LIMIT <- 1000L
MME_BAD_BODY <- 'bad request: body must be a JSON object with "model_name" and "url"'
MME_BAD_LIMIT <- sprintf("bad request: limit must be an integer from 1 to %d", MME_MAX_LIMIT)
MME_BAD_TOKEN <- "bad request: invalid next_page_token"
MULTI_MODEL_ONLY <- "multi-model mode: invoke POST /models/<name>/invoke"

#' An empty JSON object (a named empty list), so `{}` is written, never `[]`.
#' @keywords internal
json_object <- function(x = list()) if (length(x)) x else structure(list(), names = character(0))

#' A JSON response.
#' @keywords internal
json_response <- function(doc, status = 200L) {
  response(status, as.character(jsonlite::toJSON(doc, auto_unbox = TRUE, null = "null", digits = NA)),
           type = "application/json")
}

#' 404 for a model that is not loaded.
#' @keywords internal
not_loaded <- function(name) error_response(404, sprintf("model '%s' is not loaded", name))

# -- the requests' own syntax -------------------------------------------------------------------

#' `list(name, url)` of a `POST /models` body, or a 400 response (D6's texts).
#' @keywords internal
mme_load_request <- function(body) {
  text <- if (length(body)) rawToChar(body) else ""
  if (!nzchar(trimws(text)) || !validUTF8(text)) return(error_response(400, MME_BAD_BODY))
  doc <- tryCatch(jsonlite::parse_json(text, simplifyVector = FALSE), error = function(e) e)
  # an object parses to a named list; `{}` to an empty list, told from `[]` by its first character
  is_object <- !inherits(doc, "error") && is.list(doc) &&
    (!is.null(names(doc)) || startsWith(trimws(text), "{"))
  if (!is_object) return(error_response(400, MME_BAD_BODY))
  for (key in c("model_name", "url")) {
    v <- doc[[key]]
    if (!is.character(v) || length(v) != 1 || !nzchar(v)) return(error_response(400, sprintf('bad request: missing "%s"', key)))
  }
  list(name = doc[["model_name"]], url = doc[["url"]])
}

#' The `nextPageToken` that resumes a listing at `name`: its unpadded base64url (the same in
#' every Rosetta runtime, opaque to SageMaker).
#' @keywords internal
page_token <- function(name) {
  b64 <- gsub("[\r\n]", "", jsonlite::base64_enc(charToRaw(enc2utf8(name))))
  sub("=+$", "", chartr("+/", "-_", b64))
}

#' One query parameter's first value, percent-decoded (`+` is a space), or NULL.
#' @keywords internal
query_param <- function(query, key) {
  if (!nzchar(query %||% "")) return(NULL)
  for (pair in strsplit(sub("^\\?", "", query), "&", fixed = TRUE)[[1]]) {
    kv <- strsplit(pair, "=", fixed = TRUE)[[1]]
    k <- utils::URLdecode(gsub("+", " ", kv[1], fixed = TRUE))
    if (identical(k, key)) {
      v <- if (length(kv) > 1) paste(kv[-1], collapse = "=") else ""
      return(utils::URLdecode(gsub("+", " ", v, fixed = TRUE)))
    }
  }
  NULL
}

#' `list(limit, start)` (start: the first name of the page, or NULL) from `GET /models`'s
#' query, or a 400 response.
#' @keywords internal
mme_listing_request <- function(query) {
  raw_limit <- query_param(query, "limit") %||% ""
  limit <- MME_DEFAULT_LIMIT
  if (nzchar(raw_limit)) {
    if (!grepl("^[0-9]+$", raw_limit) || nchar(raw_limit) > 5 || as.integer(raw_limit) < 1L || as.integer(raw_limit) > MME_MAX_LIMIT) {
      return(error_response(400, MME_BAD_LIMIT))
    }
    limit <- as.integer(raw_limit)
  }
  token <- query_param(query, "next_page_token") %||% ""
  if (!nzchar(token)) return(list(limit = limit, start = NULL))
  if (!grepl("^[A-Za-z0-9_-]+$", token) || nchar(token) %% 4 == 1) return(error_response(400, MME_BAD_TOKEN))
  padded <- paste0(chartr("-_", "+/", token), strrep("=", (4 - nchar(token) %% 4) %% 4))
  bytes <- tryCatch(jsonlite::base64_dec(padded), error = function(e) NULL)
  if (is.null(bytes) || any(bytes == as.raw(0))) return(error_response(400, MME_BAD_TOKEN))
  start <- rawToChar(bytes)
  if (!validUTF8(start)) return(error_response(400, MME_BAD_TOKEN))
  Encoding(start) <- "UTF-8"
  list(limit = limit, start = start)
}

# -- memory ---------------------------------------------------------------------------------------

#' The apparent size of a model folder: the byte sizes of its regular files, recursively.
#' @keywords internal
folder_size <- function(folder) {
  files <- list.files(folder, recursive = TRUE, all.files = TRUE, full.names = TRUE, no.. = TRUE)
  if (!length(files)) return(0)
  info <- file.info(files, extra_cols = FALSE)
  sum(info$size[!info$isdir & !is.na(info$size)])
}

#' This process's resident memory in bytes (`/proc/self/statm`; 0 where there is none).
#' @keywords internal
resident_bytes <- function() {
  fields <- tryCatch(scan("/proc/self/statm", what = numeric(), quiet = TRUE), error = function(e) numeric(0))
  if (length(fields) < 2) 0 else fields[2] * 4096
}

#' Whether a process exists (signal 0).
#' @keywords internal
pid_alive <- function(pid) isTRUE(tools::pskill(pid, 0L))

# -- the registry the workers share -----------------------------------------------------------

#' An empty registry in `folder`: at server start, before any worker serves.
#' @keywords internal
registry_reset <- function(folder) {
  dir.create(folder, recursive = TRUE, showWarnings = FALSE)
  unlink(file.path(folder, "lock.d"), recursive = TRUE)
  registry_write(folder, list(generation = 0, models = json_object(), loading = json_object()))
}

#' Read `registry.json`.
#' @keywords internal
registry_read <- function(folder) {
  doc <- jsonlite::fromJSON(file.path(folder, "registry.json"), simplifyVector = FALSE)
  doc$models <- json_object(doc$models)
  doc$loading <- json_object(doc$loading)
  doc
}

#' Write `registry.json` then `generation`, each atomically (temporary file + rename).
#' @keywords internal
registry_write <- function(folder, state) {
  state$models <- json_object(state$models)
  state$loading <- json_object(state$loading)
  put <- function(name, text) {
    tmp <- file.path(folder, sprintf(".%s.%d.tmp", name, Sys.getpid()))
    writeLines(text, tmp, sep = "")
    file.rename(tmp, file.path(folder, name))
  }
  put("registry.json", as.character(jsonlite::toJSON(state, auto_unbox = TRUE, null = "null", digits = NA)))
  put("generation", format(state$generation, scientific = FALSE))
}

#' The registry's generation (one small read), -1 when unreadable.
#' @keywords internal
registry_generation <- function(folder) {
  raw <- tryCatch(readBin(file.path(folder, "generation"), "raw", 32L), error = function(e) raw(0))
  value <- suppressWarnings(as.numeric(rawToChar(raw)))
  if (length(value) != 1 || is.na(value)) -1 else value
}

#' Run `fn(state)` on the registry under the lock; write back what it returns (a registry),
#' or nothing when it returns NULL. The lock is held for a read, a change and a rename.
#' @keywords internal
registry_update <- function(folder, fn) {
  lock <- file.path(folder, "lock.d")
  started <- Sys.time()
  repeat {
    if (dir.create(lock, showWarnings = FALSE)) break
    owner <- suppressWarnings(tryCatch(as.integer(readLines(file.path(lock, "pid"), warn = FALSE))[1], error = function(e) NA))
    waited <- as.numeric(Sys.time() - started, units = "secs")
    # a holder killed inside the lock (it never holds it long): take the lock over
    if ((!is.na(owner) && !pid_alive(owner)) || waited > 10) {
      unlink(lock, recursive = TRUE)
      next
    }
    Sys.sleep(0.001)
  }
  on.exit(unlink(lock, recursive = TRUE))
  writeLines(as.character(Sys.getpid()), file.path(lock, "pid"))
  state <- registry_read(folder)
  # forget the reservations of workers that died while loading
  state$loading <- json_object(Filter(function(r) pid_alive(r$pid), state$loading))
  out <- fn(state)
  if (!is.null(out)) registry_write(folder, out)
  invisible(out)
}

#' Bytes counted against the budget: the loaded models and the loads in progress.
#' @keywords internal
registry_used <- function(state) {
  sum(vapply(state$models, function(m) as.numeric(m$cost), 0)) + sum(vapply(state$loading, function(r) as.numeric(r$cost), 0))
}

# -- one worker's view ----------------------------------------------------------------------------

#' A worker's multi-model store: the user's code (loaded once), the settings, the shared
#' registry folder and the models this worker holds (name → list(id, state)).
#' @param settings the serving settings.
#' @param user the user's environment (`load_user()`), or NULL.
#' @keywords internal
new_mme <- function(settings, user = NULL) {
  mme <- new.env()
  mme$settings <- settings
  mme$user <- user
  mme$folder <- settings$mme_state_dir
  mme$held <- new.env()
  mme$seen <- -2
  mme$registry <- NULL
  mme$loads <- 0L
  mme
}

#' The server state of multi-model mode: user code loaded once, no model, ready at once.
#' @keywords internal
load_mme_state <- function(settings = serving_settings()) {
  user <- if (file.exists(program_file())) load_user() else NULL
  state <- new.env()
  state$settings <- settings
  state$mme <- new_mme(settings, user)
  state$rowwise <- isTRUE(user_rowwise(user))
  state$ready <- TRUE
  state
}

#' The registry as of the last change any worker made; models this worker holds that are no
#' longer registered (or registered anew) are dropped on the way.
#' @keywords internal
mme_current <- function(mme) {
  generation <- registry_generation(mme$folder)
  if (generation != mme$seen || is.null(mme$registry)) {
    mme$registry <- registry_read(mme$folder)
    mme$seen <- generation
    dropped <- FALSE
    for (name in ls(mme$held, all.names = TRUE)) {
      entry <- mme$registry$models[[name]]
      if (is.null(entry) || !identical(entry$id, mme$held[[name]]$id)) {
        rm(list = name, envir = mme$held)
        message(sprintf("rosetta: model '%s' dropped (unloaded through another worker)", name))
        dropped <- TRUE
      }
    }
    if (dropped) invisible(gc(verbose = FALSE))
  }
  mme$registry
}

#' Load a model folder here: the user's load path, request columns and warm-up (as
#' single-model mode). Returns `list(state, growth)` (resident memory it added), or the error.
#' @keywords internal
mme_load_here <- function(mme, url) {
  before <- resident_bytes()
  state <- tryCatch(load_state(url, mme$settings, mme$user), error = function(e) e)
  if (inherits(state, "error")) return(state)
  list(state = state, growth = max(0, resident_bytes() - before))
}

#' POST /models: load `url` as `name` through this worker: 200, or 404 / 409 / 500 / 507.
#' @keywords internal
mme_load <- function(mme, name, url) {
  if (!dir.exists(url)) return(error_response(404, sprintf("no model at '%s'", url)))
  workers <- max(1L, mme$settings$workers)
  size <- folder_size(url)
  refused <- NULL
  registry_update(mme$folder, function(state) {
    if (!is.null(state$models[[name]]) || !is.null(state$loading[[name]])) {
      refused <<- error_response(409, sprintf("model '%s' is already loaded", name))
      return(NULL)
    }
    if (registry_used(state) + size * workers > mme$settings$mme_memory_bytes) {
      message(sprintf("rosetta: model '%s' (%.0f bytes on disk) does not fit: %.0f of %.0f bytes used", name, size,
                      registry_used(state), mme$settings$mme_memory_bytes))
      refused <<- error_response(507, sprintf("not enough memory to load model '%s'", name))
      return(NULL)
    }
    state$loading[[name]] <- list(pid = Sys.getpid(), cost = size * workers)
    state
  })
  if (!is.null(refused)) return(refused)
  t0 <- Sys.time()
  loaded <- mme_load_here(mme, url)
  if (inherits(loaded, "error")) {
    registry_update(mme$folder, function(state) { state$loading[[name]] <- NULL; state })
    message(sprintf("rosetta: model '%s' failed to load from %s: %s", name, url, conditionMessage(loaded)))
    return(error_response(500, sprintf("cannot load model '%s': %s", name, error_line(loaded))))
  }
  cost <- max(size, loaded$growth) * workers
  mme$loads <- mme$loads + 1L
  id <- sprintf("%d-%d-%.6f", Sys.getpid(), mme$loads, as.numeric(Sys.time()))
  fits <- FALSE
  registry_update(mme$folder, function(state) {
    state$loading[[name]] <- NULL
    fits <<- registry_used(state) + cost <= mme$settings$mme_memory_bytes
    if (fits) {
      state$models[[name]] <- list(url = url, cost = cost, id = id)
      state$generation <- state$generation + 1
    }
    state
  })
  if (!fits) {
    message(sprintf("rosetta: model '%s' took %.0f bytes once loaded: over the budget", name, cost))
    return(error_response(507, sprintf("not enough memory to load model '%s'", name)))
  }
  assign(name, list(id = id, state = loaded$state), envir = mme$held)
  message(sprintf("rosetta: model '%s' loaded from %s in %.2f s (cost %.1f MiB over %d workers)", name, url,
                  as.numeric(Sys.time() - t0, units = "secs"), cost / MIB, workers))
  json_response(list(modelName = name, modelUrl = url))
}

#' DELETE /models/{name}: unload everywhere (other workers drop it at their next request).
#' @keywords internal
mme_unload <- function(mme, name) {
  found <- FALSE
  registry_update(mme$folder, function(state) {
    if (is.null(state$models[[name]])) return(NULL)
    found <<- TRUE
    state$models[[name]] <- NULL
    state$generation <- state$generation + 1
    state
  })
  if (!found) return(not_loaded(name))
  if (exists(name, envir = mme$held, inherits = FALSE)) rm(list = name, envir = mme$held)
  invisible(gc(verbose = FALSE))
  message(sprintf("rosetta: model '%s' unloaded", name))
  json_response(list(modelName = name))
}

#' GET /models/{name}.
#' @keywords internal
mme_describe <- function(mme, name) {
  entry <- mme_current(mme)$models[[name]]
  if (is.null(entry)) return(not_loaded(name))
  json_response(list(modelName = name, modelUrl = entry$url))
}

#' GET /models: one page sorted by name (code points) from the first name >= the token's.
#' @keywords internal
mme_listing <- function(mme, query) {
  req <- mme_listing_request(query)
  if (!is.null(req$status)) return(req)
  models <- mme_current(mme)$models
  names <- sort(names(models), method = "radix")  # radix: C-locale (code point) order
  # the first name >= start: where start falls among the names, in the same order
  i <- if (is.null(req$start)) 1L else match(req$start, sort(c(names, req$start), method = "radix"))
  last <- min(length(names), i + req$limit - 1L)
  page <- if (i <= length(names)) names[i:last] else character(0)
  doc <- list(models = lapply(page, function(n) list(modelName = n, modelUrl = models[[n]]$url)))
  if (last < length(names)) doc$nextPageToken <- page_token(names[last + 1L])
  json_response(doc)
}

#' The server state of the model to invoke: held here, or loaded here now if another worker
#' loaded it; a 404 (or 500) response if neither.
#' @keywords internal
mme_model <- function(mme, name) {
  for (attempt in 1:3) {  # another round only if it was unloaded and loaded again meanwhile
    entry <- mme_current(mme)$models[[name]]
    if (is.null(entry)) return(not_loaded(name))
    held <- mget(name, envir = mme$held, ifnotfound = list(NULL))[[1]]
    if (!is.null(held) && identical(held$id, entry$id)) return(held$state)
    loaded <- mme_load_here(mme, entry$url)
    if (inherits(loaded, "error")) {
      message(sprintf("rosetta: model '%s' failed to load from %s: %s", name, entry$url, conditionMessage(loaded)))
      return(error_response(500, sprintf("cannot load model '%s': %s", name, error_line(loaded))))
    }
    current <- mme_current(mme)$models[[name]]
    if (!is.null(current) && identical(current$id, entry$id)) {
      assign(name, list(id = entry$id, state = loaded$state), envir = mme$held)
      message(sprintf("rosetta: model '%s' loaded here too (first request for it in this worker)", name))
      return(loaded$state)
    }
  }
  not_loaded(name)
}
