# The routing table (contract §4; identical in the Python and Julia runtimes). A request is
# `list(method, path, headers = <named list, lower-case names>, body = <raw>)`; a handler
# returns `list(status, headers, body)`. `dispatch()` is pure R, so the tests call it
# directly; plumber (serve.R) is only the HTTP layer around it.

#' The routes: path, allowed methods, handler.
#' @keywords internal
ROUTES <- list(
  list(path = "/ping", methods = c("GET", "HEAD"), handler = function(req, state) handle_ping(req, state)),
  list(path = "/invocations", methods = "POST", handler = function(req, state) handle_invocations(req, state)),
  list(path = "/execution-parameters", methods = "GET", handler = function(req, state) handle_execution_parameters(req, state))
)

#' A response.
#' @keywords internal
response <- function(status, body = "", type = "text/plain; charset=utf-8", headers = list()) {
  list(status = as.integer(status), headers = c(list("Content-Type" = type), headers), body = body)
}

#' A short one-line text error (S-17).
#' @keywords internal
error_response <- function(status, message, headers = list()) response(status, paste0(message, "\n"), headers = headers)

#' Route one request through the table: 404 for unknown paths, 405 (with `Allow`) for a
#' known path with another method.
#' @param req the request list.
#' @param state the server state (model, user code, settings).
#' @keywords internal
dispatch <- function(req, state) {
  for (route in ROUTES) {
    if (identical(route$path, req$path)) {
      if (!(req$method %in% route$methods)) {
        return(error_response(405, "method not allowed", list(Allow = paste(route$methods, collapse = ", "))))
      }
      return(route$handler(req, state))
    }
  }
  error_response(404, "not found")
}

#' GET /ping: 200 once the model is loaded and warmed up (S-07), else 503.
#' @keywords internal
handle_ping <- function(req, state) {
  if (isTRUE(state$ready)) response(200, "") else error_response(503, "model is loading")
}

#' GET /execution-parameters (B-03): W × P capped to ≤ 100.
#' @keywords internal
handle_execution_parameters <- function(req, state) {
  payload <- batch_payload_mb()
  workers <- env_int("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", state$workers %||% 1L)
  if (workers * payload > 100) workers <- max(1L, 100L %/% payload)
  body <- jsonlite::toJSON(list(MaxConcurrentTransforms = workers,
                                BatchStrategy = Sys.getenv("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD"),
                                MaxPayloadInMB = payload), auto_unbox = TRUE)
  response(200, as.character(body), type = "application/json")
}

#' The request body limit in bytes: SAGEMAKER_MAX_PAYLOAD_IN_MB MiB, never below 6 MiB (S-12).
#' @keywords internal
payload_limit <- function() max(6, env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", 6L)) * 1024 * 1024

#' POST /invocations: the ordered checks 413 → 415 → 406 → 400 → 500 (contract §4).
#' @keywords internal
handle_invocations <- function(req, state) {
  limit <- state$payload_limit %||% payload_limit()
  size <- suppressWarnings(as.numeric(req$headers[["content-length"]] %||% length(req$body)))
  if (is.na(size)) size <- length(req$body)
  if (size > limit || length(req$body) > limit) {
    return(error_response(413, sprintf("payload too large: %.0f bytes > limit %.0f bytes", max(size, length(req$body)), limit)))
  }
  ctype_raw <- req$headers[["content-type"]] %||% ""
  blank <- !(ctype_raw %in% MEDIA_TYPES) && !nzchar(trimws(ctype_raw))
  ctype <- if (blank) list(type = "text/csv", params = list()) else parse_media_type(ctype_raw)
  canonical <- canonical_type(ctype$type)
  accept_raw <- req$headers[["accept"]]
  default_accept <- state$default_accept %||% Sys.getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "")
  if (is.na(canonical)) {
    return(error_response(415, sprintf("unsupported Content-Type '%s'; accepted: %s", ctype_raw, ACCEPTED)))
  }
  default <- if (nzchar(default_accept)) canonical_type(parse_media_type(default_accept)$type) else canonical
  if (is.na(default)) default <- canonical
  accept <- negotiate(accept_raw, default)
  if (is.na(accept)) {
    return(error_response(406, sprintf("cannot produce '%s'; available: %s", accept_raw, ACCEPTED)))
  }
  # the user's input_fn (if any) decodes first; NULL means "use the codec registry"
  user_in <- user_hook(state$user, "input_fn")
  X <- tryCatch({
    x <- if (!is.null(user_in)) user_in(req$body, ctype$type) else NULL
    if (is.null(x)) x <- as_model_input(CODECS[[canonical]]$decode(req$body, ctype$params, state$n_features), state$features)
    x
  }, rosetta_bad_request = function(e) e, error = function(e) {
    message("input_fn failed: ", conditionMessage(e))
    structure(class = c("rosetta_bad_request", "error", "condition"), list(message = paste("bad input:", conditionMessage(e))))
  })
  if (inherits(X, "rosetta_bad_request")) return(error_response(400, conditionMessage(X)))
  predictions <- tryCatch(predict_records(state, X), error = function(e) e)
  if (inherits(predictions, "error")) {
    message("prediction failed: ", conditionMessage(predictions))
    return(error_response(500, sprintf("model error: %s", class(predictions)[1])))
  }
  user_out <- user_hook(state$user, "output_fn")
  if (!is.null(user_out)) {
    out <- tryCatch(user_out(predictions, accept), error = function(e) e)
    if (inherits(out, "error")) return(error_response(500, sprintf("model error: %s", class(out)[1])))
    if (!is.null(out)) return(response(200, out[[1]], type = out[[2]]))
  }
  records <- as_records(predictions)
  expected <- if (is.data.frame(X) || is.matrix(X)) nrow(X) else NA
  if (!is.na(expected) && n_records(records) != expected) {
    message(sprintf("model returned %d predictions for %d records", n_records(records), expected))
    return(error_response(500, "model error: wrong number of predictions"))
  }
  response(200, CODECS[[accept]]$encode(records), type = accept)
}
