# Adaptive batching (D9): concurrent requests to one row-wise model share one prediction
# call, as the Python runtime's batching.py (the reference).
#
# The user declares the model's prediction row-wise with `rowwise <- TRUE` in model.R. A
# plumber worker is one R thread: while a prediction runs, httpuv's I/O thread keeps reading
# and parsing requests and queues a call into R for each on later's event loop. So:
# - an idle model predicts at once: a request that finds later's loop empty (no other
#   request already parsed, the case at c=1) predicts inline, synchronously, as without
#   batching (one `later::loop_empty()` call is all it costs);
# - otherwise it joins this model's queue and answers with a promise; the first one
#   schedules a drain on the loop (delay 0, or up to `ROSETTA_BATCH_WAIT_MS` to fill up to
#   `ROSETTA_BATCH_MAX_ROWS`), which runs after the calls already queued: every request
#   parsed meanwhile has joined by then. The drain predicts batch after batch until the
#   queue is empty;
# - only numeric matrices decoded by the codecs are stacked, of the same width, at most
#   `max_rows` rows (a larger request runs alone); an `input_fn` result never queues;
# - one prediction per batch, its result cut back by row counts. A model error, a result
#   that cannot be cut or whose length is not the batch's row count: every request of the
#   batch is predicted alone, so each gets exactly the answer (or the error) it would get
#   unbatched.
# Requests are decoded and validated one by one before they get here and encoded one by one
# after (codecs and negotiation are per request), so batching never changes a response.
# Each model (multi-model mode) and each worker process has its own queue.

#' A model's batch queue in one worker.
#' @param settings the serving settings (`batch_max_rows`, `batch_wait_ms`).
#' @keywords internal
new_batcher <- function(settings) {
  b <- new.env()
  b$max_rows <- settings$batch_max_rows
  b$wait_s <- settings$batch_wait_ms / 1000
  b$queue <- list()
  b$scheduled <- FALSE
  #: requests answered and prediction calls made (retries alone included)
  b$requests <- 0
  b$calls <- 0
  b
}

#' Queue a decoded request for a batch, or NULL: predict it at once (the model is idle and no
#' other request is waiting to be handled).
#' @param state the model's server state (with a `batcher`).
#' @param M the request's numeric matrix (records x features), from the codecs.
#' @return NULL, or a promise of the request's predictions (or the error predicting it alone
#'   raised, as a condition object).
#' @keywords internal
batch_submit <- function(state, M) {
  b <- state$batcher
  if (!b$scheduled && later::loop_empty()) {
    b$requests <- b$requests + 1
    b$calls <- b$calls + 1
    return(NULL)
  }
  promises::promise(function(resolve, reject) {
    b$queue[[length(b$queue) + 1L]] <- list(M = M, rows = nrow(M), key = ncol(M), resolve = resolve,
                                            arrived = Sys.time())
    if (!b$scheduled) {
      b$scheduled <- TRUE
      later::later(function() batch_drain(state), 0)
    }
  })
}

#' Predict the queue batch after batch until it is empty (a later callback). With a wait
#' bound, a head batch below `max_rows` waits until its oldest request is `wait_s` old.
#' @keywords internal
batch_drain <- function(state) {
  b <- state$batcher
  while (length(b$queue)) {
    if (b$wait_s > 0 && batch_rows_like_head(b) < b$max_rows) {
      left <- b$wait_s - as.numeric(Sys.time() - b$queue[[1]]$arrived, units = "secs")
      if (left > 0) {
        later::later(function() batch_drain(state), left)
        return(invisible())
      }
    }
    batch_run(state, batch_take(b))
  }
  b$scheduled <- FALSE
  invisible()
}

#' Rows queued with the head request's width.
#' @keywords internal
batch_rows_like_head <- function(b) {
  key <- b$queue[[1]]$key
  sum(vapply(b$queue, function(r) if (r$key == key) r$rows else 0, 0))
}

#' The next batch: the oldest request, then the next ones of its width in arrival order
#' while they fit in `max_rows` (first come, first served: no later, smaller request jumps
#' ahead of one that does not fit); the others keep their places.
#' @keywords internal
batch_take <- function(b) {
  queue <- b$queue
  head <- queue[[1]]
  batch <- list(head)
  rest <- list()
  rows <- head$rows
  full <- head$rows >= b$max_rows
  for (r in queue[-1]) {
    if (!full && r$key == head$key) {
      if (rows + r$rows <= b$max_rows) {
        batch[[length(batch) + 1L]] <- r
        rows <- rows + r$rows
        next
      }
      full <- TRUE
    }
    rest[[length(rest) + 1L]] <- r
  }
  b$queue <- rest
  batch
}

#' One prediction for a batch, cut back per request; each request alone when that fails.
#' @keywords internal
batch_run <- function(state, batch) {
  b <- state$batcher
  b$requests <- b$requests + length(batch)
  if (length(batch) == 1L) return(batch_alone(state, batch[[1]]))
  b$calls <- b$calls + 1
  rows <- vapply(batch, function(r) r$rows, 0)
  X <- as_model_input(do.call(rbind, lapply(batch, function(r) r$M)), state$features)
  parts <- tryCatch(batch_split(predict_records(state, X), rows), error = function(e) {
    message(sprintf("rosetta: a batch of %d requests failed (%s): each is predicted alone", length(batch), error_line(e)))
    NULL
  })
  if (is.null(parts)) {
    for (r in batch) batch_alone(state, r)
    return(invisible())
  }
  for (i in seq_along(batch)) batch[[i]]$resolve(list(parts[[i]]))
  invisible()
}

#' Predict one queued request alone; it gets its predictions or its own error.
#' @keywords internal
batch_alone <- function(state, r) {
  state$batcher$calls <- state$batcher$calls + 1
  p <- tryCatch(predict_records(state, as_model_input(r$M, state$features)), error = function(e) e)
  r$resolve(list(p))
}

#' Predictions cut into consecutive parts of `rows` records, or NULL when their number is not
#' the rows' sum or they cannot be cut (then every request is predicted alone). Automatic
#' names and row names are numbered per part, as each request's own prediction would be.
#' @keywords internal
batch_split <- function(p, rows) {
  total <- sum(rows)
  two_d <- is.data.frame(p) || is.matrix(p)
  if (!two_d && !(is.atomic(p) || is.factor(p)) || !is.null(dim(p)) && !two_d) return(NULL)
  if (n_records(p) != total) {
    message(sprintf("rosetta: a batch of %d requests gave %d results for %d rows: each is predicted alone",
                    length(rows), n_records(p), total))
    return(NULL)
  }
  auto <- function(n) if (is.null(n)) TRUE else identical(as.character(n), as.character(seq_len(total)))
  numbered <- if (two_d) auto(rownames(p)) && !is.null(rownames(p)) else auto(names(p)) && !is.null(names(p))
  if (two_d && !numbered && !is.null(rownames(p))) return(NULL)  # row names that say which row: not ours to cut
  if (!two_d && !numbered && !is.null(names(p))) return(NULL)
  ends <- cumsum(rows)
  lapply(seq_along(rows), function(i) {
    idx <- (ends[i] - rows[i] + 1L):ends[i]
    if (two_d) {
      part <- p[idx, , drop = FALSE]
      if (is.data.frame(part)) {
        if (numbered) rownames(part) <- NULL
      } else if (!is.null(dimnames(p))) {  # subsetting drops list(NULL, NULL): keep what p had
        dimnames(part) <- list(if (numbered) as.character(seq_len(rows[i])), colnames(p))
      }
    } else {
      part <- p[idx]
      if (numbered) names(part) <- as.character(seq_len(rows[i]))
    }
    part
  })
}
