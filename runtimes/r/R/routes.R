# The routing table (contract §4; identical in the Python and Julia runtimes). A request is
# `list(method, path, headers = <named list, lower-case names>, body = <raw>)`; a handler
# returns `list(status, headers, body)`. `dispatch()` is pure R, so the tests call it
# directly; plumber (serve.R) is only the HTTP layer around it.

#' The routes: path, allowed methods, handler. `{name}` is one percent-decoded path segment;
#' the `/models` routes exist in multi-model mode only (D6).
#' @keywords internal
ROUTES <- list(
  list(path = "/ping", methods = c("GET", "HEAD"), handler = function(req, state) handle_ping(req, state)),
  list(path = "/invocations", methods = "POST", handler = function(req, state) handle_invocations(req, state)),
  list(path = "/execution-parameters", methods = "GET", handler = function(req, state) handle_execution_parameters(req, state)),
  list(path = "/models", methods = c("GET", "POST"), multi = TRUE, handler = function(req, state) {
    if (req$method == "GET") mme_listing(state$mme, req$query) else handle_load(req, state)
  }),
  list(path = "/models/{name}", methods = c("GET", "DELETE"), multi = TRUE, handler = function(req, state) {
    if (req$method == "GET") mme_describe(state$mme, req$name) else mme_unload(state$mme, req$name)
  }),
  list(path = "/models/{name}/invoke", methods = "POST", multi = TRUE, handler = function(req, state) {
    model <- mme_model(state$mme, req$name)
    if (!is.null(model$status)) model else handle_invocations(req, model)
  })
)
ROUTE_INDEX <- stats::setNames(seq_along(ROUTES), vapply(ROUTES, function(r) r$path, ""))

#' A response.
#' @keywords internal
response <- function(status, body = "", type = "text/plain; charset=utf-8", headers = list()) {
  list(status = as.integer(status), headers = c(list("Content-Type" = type), headers), body = body)
}

#' A short one-line text error (S-17).
#' @keywords internal
error_response <- function(status, message, headers = list()) response(status, paste0(message, "\n"), headers = headers)

#' The route of a request path (the path as sent, percent-encoded): the routing table's key,
#' with the model name for the `/models/{name}` routes, or NULL.
#' @keywords internal
route_of <- function(path) {
  if (!is.na(ROUTE_INDEX[path])) return(list(key = path))
  if (!startsWith(path, "/models/")) return(NULL)
  # split the path as sent, so that an escaped '/' (%2F) stays inside the name
  parts <- strsplit(substring(path, 9L), "/", fixed = TRUE)[[1]]
  if (endsWith(path, "/")) parts <- c(parts, "")
  if (!length(parts) || !nzchar(parts[1]) || length(parts) > 2 || (length(parts) == 2 && parts[2] != "invoke")) return(NULL)
  name <- utils::URLdecode(parts[1])
  Encoding(name) <- "UTF-8"
  list(key = if (length(parts) == 1) "/models/{name}" else "/models/{name}/invoke", name = name)
}

#' Route one request through the table: 404 for unknown paths (and the `/models` routes in
#' single-model mode), 405 (with `Allow`) for a known path with another method. A handler's
#' answer is a response, or (adaptive batching, D9) a promise of one.
#' @param req the request list (`path` as sent; `query` the query string without `?`).
#' @param state the server state (model, user code, settings; or the multi-model store).
#' @keywords internal
dispatch <- function(req, state) {
  found <- route_of(req$path)
  if (is.null(found)) return(error_response(404, "not found"))
  route <- ROUTES[[ROUTE_INDEX[[found$key]]]]
  if (isTRUE(route$multi) && is.null(state$mme)) return(error_response(404, "not found"))
  if (!(req$method %in% route$methods)) {
    return(error_response(405, "method not allowed", list(Allow = paste(route$methods, collapse = ", "))))
  }
  req$name <- found$name
  route$handler(req, state)
}

#' POST /models: 400 for a bad body, then the load (D6).
#' @keywords internal
handle_load <- function(req, state) {
  parsed <- mme_load_request(req$body)
  if (!is.null(parsed$status)) return(parsed)
  mme_load(state$mme, parsed$name, parsed$url)
}

#' GET /ping: 200 once the model is loaded and warmed up (S-07), else 503.
#' @keywords internal
handle_ping <- function(req, state) {
  if (isTRUE(state$ready)) response(200, "") else error_response(503, "model is loading")
}

#' GET /execution-parameters (B-03): W × P capped to ≤ 100.
#' @keywords internal
handle_execution_parameters <- function(req, state) {
  s <- state$settings
  payload <- s$batch_payload_mb
  workers <- s$max_concurrent_transforms
  if (workers * payload > 100) workers <- max(1L, 100L %/% payload)
  body <- jsonlite::toJSON(list(MaxConcurrentTransforms = workers, BatchStrategy = s$batch_strategy,
                                MaxPayloadInMB = payload), auto_unbox = TRUE)
  response(200, as.character(body), type = "application/json")
}

#' POST /invocations, the ordered checks of D3: 413 → 415 → 406 → decode (400) → predict
#' (500) → one output per record (500) → encode. With a user `input_fn`, any Content-Type
#' goes to it (415 only when it returns NULL and no codec fits); with a user `output_fn`, the
#' first acceptable media type goes to it (406 only when it returns NULL and no codec fits).
#' Errors raised by user code answer with the first line of their message.
#' @keywords internal
handle_invocations <- function(req, state) {
  if (!is.null(state$mme)) return(error_response(404, MULTI_MODEL_ONLY))
  limit <- state$settings$max_body_bytes
  size <- suppressWarnings(as.numeric(req$headers[["content-length"]] %||% length(req$body)))
  if (is.na(size)) size <- length(req$body)
  if (size > limit || length(req$body) > limit) {
    return(error_response(413, sprintf("payload too large: %.0f bytes > limit %.0f bytes", max(size, length(req$body)), limit)))
  }
  ctype_raw <- req$headers[["content-type"]] %||% ""
  blank <- !(ctype_raw %in% MEDIA_TYPES) && !nzchar(trimws(ctype_raw))
  ctype <- if (blank) list(type = "text/csv", params = list()) else parse_media_type(ctype_raw)
  canonical <- canonical_type(ctype$type)
  input_fn <- state$input_fn
  if (is.na(canonical) && is.null(input_fn)) return(unsupported_type(ctype_raw))
  # no Accept, empty or */*: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else the request's type if
  # it has a codec, else JSON (the SageMaker inference toolkit's default)
  fallback <- state$default_codec
  if (is.na(fallback)) fallback <- if (is.na(canonical)) "application/json" else canonical
  default <- state$default_accept
  if (is.na(default)) default <- fallback
  accept_raw <- req$headers[["accept"]]
  negotiated <- negotiate(accept_raw, default, fallback)
  accept <- negotiated[2]
  output_fn <- state$output_fn
  if (is.na(accept) && is.null(output_fn)) return(not_acceptable(accept_raw))
  X <- NULL
  if (!is.null(input_fn)) {
    X <- tryCatch(input_fn(req$body, ctype$type), error = function(e) e)
    if (inherits(X, "error")) {
      message("input_fn failed: ", conditionMessage(X))
      return(error_response(400, paste("cannot decode payload:", error_line(X))))
    }
  }
  if (is.null(X)) {
    if (is.na(canonical)) return(unsupported_type(ctype_raw))
    M <- tryCatch(CODECS[[canonical]]$decode(req$body, ctype$params, state$decode_options), rosetta_bad_request = function(e) e)
    if (inherits(M, "rosetta_bad_request")) return(error_response(400, conditionMessage(M)))
    if (!is.null(state$batcher) && is.matrix(M) && is.numeric(M) && nrow(M) > 0) {
      queued <- batch_submit(state, M)  # D9; NULL: the model is idle, predict now
      if (!is.null(queued)) {
        return(promises::then(queued, function(p) {
          finish_invocation(state, p[[1]], nrow(M), output_fn, negotiated, accept_raw)
        }))
      }
    }
    X <- as_model_input(M, state$features)
  }
  predictions <- tryCatch(predict_records(state, X), error = function(e) e)
  finish_invocation(state, predictions, input_records(X), output_fn, negotiated, accept_raw)
}

#' The end of POST /invocations (D3) once predicted: 500 for a model error, the one output per
#' record check, then `output_fn` or the negotiated codec.
#' @param predictions the raw predictions, or the error condition predicting raised.
#' @param expected the number of input records (NA: unknown).
#' @keywords internal
finish_invocation <- function(state, predictions, expected, output_fn, negotiated, accept_raw) {
  accept <- negotiated[2]
  records <- if (inherits(predictions, "error")) predictions else tryCatch(as_records(predictions), error = function(e) e)
  if (inherits(records, "error")) {
    message("prediction failed: ", conditionMessage(records))
    return(error_response(500, paste("model error:", error_line(records))))
  }
  if (!is.na(expected) && n_records(records) != expected) {  # B-08: one output per input record
    text <- sprintf("predict returned %d results for %d records", n_records(records), expected)
    message("prediction failed: ", text)
    return(error_response(500, paste("model error:", text)))
  }
  if (!is.null(output_fn) && !is.na(negotiated[1])) {
    out <- tryCatch(output_fn(predictions, negotiated[1]), error = function(e) e)
    if (inherits(out, "error")) {
      message("output_fn failed: ", conditionMessage(out))
      return(error_response(500, paste("model error:", error_line(out))))
    }
    if (!is.null(out)) {
      if (!is.list(out) || length(out) != 2) return(error_response(500, "model error: output_fn must return list(body, content_type) or NULL"))
      return(response(200, out[[1]], type = as.character(out[[2]])))
    }
  }
  if (is.na(accept)) return(not_acceptable(accept_raw))
  response(200, CODECS[[accept]]$encode(records), type = accept)
}

#' 415 in the contract's words.
#' @keywords internal
unsupported_type <- function(ctype_raw) {
  error_response(415, sprintf("unsupported Content-Type '%s'; accepted: %s", ctype_raw, ACCEPTED))
}

#' 406 in the contract's words.
#' @keywords internal
not_acceptable <- function(accept_raw) {
  error_response(406, sprintf("cannot produce '%s'; available: %s", accept_raw, ACCEPTED))
}
