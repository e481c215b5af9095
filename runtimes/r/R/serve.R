# The serving worker (contract §4): plumber is the HTTP layer around `dispatch()`. Each
# worker is one R process that loads the model once, warms up, then listens on a unix
# socket (behind nginx, see bin/serve: no extra TCP port, M-03) or on a TCP port.

#' plumber request → the routing table's request list: httpuv's `HEADERS` (lower-case
#' names) when present, else the Rook `HTTP_*` variables; the body is read here, once.
#' @keywords internal
from_plumber <- function(req) {
  headers <- if (!is.null(req$HEADERS)) as.list(req$HEADERS) else rook_headers(req)
  body <- if (!is.null(req$rook.input)) req$rook.input$read()
  list(method = req$REQUEST_METHOD, path = req$PATH_INFO, query = sub("^[?]", "", req$QUERY_STRING %||% ""),
       headers = headers, body = body %||% raw(0))
}

#' Headers from a Rook environment without httpuv's `HEADERS` (in-process requests).
#' @keywords internal
rook_headers <- function(req) {
  keys <- grep("^HTTP_", ls(req), value = TRUE)
  headers <- stats::setNames(lapply(keys, function(k) req[[k]]), tolower(gsub("_", "-", sub("^HTTP_", "", keys))))
  if (!is.null(req$CONTENT_TYPE)) headers[["content-type"]] <- req$CONTENT_TYPE
  if (!is.null(req$CONTENT_LENGTH)) headers[["content-length"]] <- req$CONTENT_LENGTH
  headers
}

#' The routing table's answer → plumber's response (returning `res` skips serializers).
#' @keywords internal
to_plumber <- function(out, res) {
  res$status <- out$status
  for (h in names(out$headers)) res$setHeader(h, out$headers[[h]])
  res$body <- out$body
  res
}

#' Build the plumber router from ROUTES: every route's methods call `dispatch()`, other
#' methods on the same path too (405), and unknown paths (404).
#' @param state the server state (see `load_state()`).
#' @keywords internal
build_router <- function(state) {
  handle <- function(req, res) {
    out <- dispatch(from_plumber(req), state)
    if (promises::is.promising(out)) return(promises::then(out, function(o) to_plumber(o, res)))  # batched (D9)
    to_plumber(out, res)
  }
  # No filters and every route in the first ("__first__") group: plumber's default filters
  # (query string, body, cookies) and each extra routing step cost more than the prediction
  # of one row; the handler reads the body itself, the codec registry decodes it.
  router <- plumber::pr(filters = list())
  verbs <- c("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
  for (route in ROUTES) {
    if (grepl("{", route$path, fixed = TRUE)) next  # /models/{name}...: through the 404 handler, dispatch() routes them
    router <- plumber::pr_handle(router, verbs, route$path, handle, serializer = plumber::serializer_text(),
                                 preempt = "__first__")
  }
  plumber::pr_set_404(router, handle)
  plumber::pr_set_error(router, function(req, res, err) {
    message("server error: ", conditionMessage(err))
    to_plumber(error_response(500, "internal server error"), res)
  })
  router
}

#' Run one serving worker (blocks). Listens on `ROSETTA_WORKER_SOCKET` (a unix socket path)
#' if set, else on `0.0.0.0:SAGEMAKER_BIND_TO_PORT`; touches `ROSETTA_READY_FILE` once the
#' model is loaded, warmed up and the socket accepts. A missing or corrupt model, or a bad
#' setting, exits 1.
#' @export
serve_worker <- function() {
  settings <- tryCatch(serving_settings(), error = function(e) {
    message("rosetta: cannot serve: ", conditionMessage(e))
    quit(save = "no", status = 1)
  })
  state <- tryCatch(if (settings$multi_model) load_mme_state(settings) else load_state(settings = settings), error = function(e) {
    message(if (settings$multi_model) "rosetta: cannot load the user code: " else "rosetta: cannot load the model: ", conditionMessage(e))
    quit(save = "no", status = 1)
  })
  if (settings$multi_model) {
    # bin/serve resets the registry before any worker starts; alone (serve-one), the worker does
    if (!file.exists(file.path(settings$mme_state_dir, "registry.json")) || !nzchar(settings$worker_socket)) {
      registry_reset(settings$mme_state_dir)
    }
    message(sprintf("rosetta: multi-model mode (memory budget %.0f MiB, registry %s)", settings$mme_memory_bytes / MIB,
                    settings$mme_state_dir))
  }
  message("rosetta: ", batching_status(state$rowwise, settings))
  router <- build_router(state)
  socket <- settings$worker_socket
  if (nzchar(socket)) {
    unlink(socket)
    server <- httpuv::startPipeServer(socket, 0L, router)  # mask 0: nginx (another user) may connect
  } else {
    server <- httpuv::startServer("0.0.0.0", settings$port, router)
  }
  if (nzchar(settings$ready_file)) writeLines(as.character(Sys.getpid()), settings$ready_file)
  message(sprintf("rosetta: worker %d ready on %s", Sys.getpid(), if (nzchar(socket)) socket else "0.0.0.0"))
  repeat httpuv::service(1000)
}
