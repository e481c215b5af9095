# The codec registry (contract §4 /invocations): media types, Accept negotiation, and the
# decoders/encoders for headerless CSV (B-09), JSON and JSON Lines. Decoders return a
# numeric matrix (records x features) or signal a `rosetta_bad_request` with the 400 text.

#' Signal a 400 with a short message.
#' @keywords internal
bad_request <- function(message) {
  stop(structure(class = c("rosetta_bad_request", "error", "condition"),
                 list(message = message, call = NULL)))
}

#' Parse one media type: lower-cased type plus parameters (`text/csv; header=present`).
#' @keywords internal
parse_media_type <- function(value) {
  if (value %in% MEDIA_TYPES) return(list(type = value, params = list()))  # the common case, no regex
  if (!grepl(";", value, fixed = TRUE)) return(list(type = tolower(trimws(value)), params = list()))
  parts <- trimws(strsplit(value, ";", fixed = TRUE)[[1]])
  params <- list()
  for (p in parts[-1]) {
    kv <- strsplit(p, "=", fixed = TRUE)[[1]]
    if (length(kv) == 2) params[[tolower(trimws(kv[1]))]] <- gsub('^"|"$', "", trimws(kv[2]))
  }
  list(type = tolower(parts[1] %||% ""), params = params)
}

#' Canonical codec name of a media type, or NA.
#' @keywords internal
canonical_type <- function(type) {
  if (type %in% names(CODECS)) return(type)
  if (type %in% names(ALIASES)) return(ALIASES[[type]])
  NA_character_
}

#' Choose the response type from `Accept` (B-06, S-16): absent, empty or `*/*` → the
#' default; else the highest q (then order), `q=0` excluded, `text/*` and `application/*`
#' allowed. NA when nothing is acceptable.
#' @keywords internal
negotiate <- function(accept, default) {
  if (is.null(accept)) return(default)
  if (accept %in% MEDIA_TYPES) return(canonical_type(accept))  # the common case: one exact type
  if (!nzchar(trimws(accept))) return(default)
  items <- lapply(strsplit(accept, ",", fixed = TRUE)[[1]], parse_media_type)
  items <- Filter(function(m) nzchar(m$type), items)
  q <- vapply(items, function(m) suppressWarnings(as.numeric(m$params$q %||% "1")), 0)
  q[is.na(q)] <- 0
  if (length(items) == 1 && items[[1]]$type == "*/*" && q[1] > 0) return(default)
  for (i in order(-q, seq_along(q))) {
    if (q[i] <= 0) next
    type <- items[[i]]$type
    if (type == "*/*") return(default)
    canonical <- canonical_type(type)
    if (!is.na(canonical)) return(canonical)
    if (endsWith(type, "/*")) {
      prefix <- sub("\\*$", "", type)
      if (startsWith(default, prefix)) return(default)
      hit <- names(CODECS)[startsWith(names(CODECS), prefix)]
      if (length(hit)) return(hit[1])
    }
  }
  NA_character_
}

#' Raw body → UTF-8 text (BOM skipped); 400 on invalid UTF-8 or empty input.
#' @keywords internal
body_text <- function(body) {
  if (length(body) >= 3 && body[1] == as.raw(0xef) && body[2] == as.raw(0xbb) && body[3] == as.raw(0xbf)) body <- body[-(1:3)]
  if (length(body) == 0) bad_request("empty payload")
  if (any(body == as.raw(0))) bad_request("invalid UTF-8")
  text <- rawToChar(body)
  Encoding(text) <- "UTF-8"
  if (!validUTF8(text)) bad_request("invalid UTF-8")
  text
}

#' Check a list of character/number fields per record and build the matrix.
#' `fields`: character vector of all fields; `widths`: fields per record.
#' @keywords internal
fields_to_matrix <- function(fields, widths, n_features = NULL) {
  if (length(widths) == 0) bad_request("empty payload")
  expected <- if (is.null(n_features)) widths[1] else n_features
  wrong <- which(widths != expected)
  if (length(wrong)) bad_request(sprintf("row %d has %d columns, expected %d", wrong[1], widths[wrong[1]], expected))
  values <- if (is.numeric(fields)) fields else suppressWarnings(as.numeric(fields))
  bad <- which(is.na(values) & !is.nan(values))
  if (length(bad)) {
    row <- findInterval(bad[1] - 1, cumsum(c(0, widths))) 
    bad_request(sprintf("row %d: '%s' is not a number", row, trimws(fields[bad[1]])))
  }
  bad <- which(!is.finite(values))
  if (length(bad)) bad_request(sprintf("row %d: non-finite value", findInterval(bad[1] - 1, cumsum(c(0, widths)))))
  matrix(values, nrow = length(widths), byrow = TRUE)
}

#' The non-blank lines of a text, LF or CRLF (B-08: blank lines are skipped).
#' @keywords internal
nonblank_lines <- function(text) {
  # a fixed-string split and one vectorised blank test: a regex split and trimws() cost more
  # than the whole parse of a small request
  lines <- strsplit(text, "\n", fixed = TRUE)[[1]]
  if (grepl("\r", text, fixed = TRUE)) lines <- sub("\r$", "", lines)
  lines[grepl("[^ \t\r\n]", lines)]  # trimws()'s blanks
}

#' Headerless CSV (B-09) unless `header=present` or ROSETTA_CSV_HEADER=true; blank lines
#' skipped, final newline optional (B-08).
#' @keywords internal
decode_csv <- function(body, params = list(), n_features = NULL) {
  lines <- nonblank_lines(body_text(body))
  header <- identical(tolower(params$header %||% ""), "present") || tolower(Sys.getenv("ROSETTA_CSV_HEADER")) == "true"
  if (header) lines <- lines[-1]
  if (length(lines) == 0) bad_request("empty payload")
  cells <- strsplit(lines, ",", fixed = TRUE)
  widths <- lengths(cells)
  # "1,2," has an empty last field that strsplit drops: count separators instead
  trailing <- endsWith(lines, ",")
  if (any(trailing)) {
    cells[trailing] <- lapply(cells[trailing], function(c) c(c, ""))
    widths <- lengths(cells)
  }
  # as.numeric() accepts surrounding blanks, so fields are trimmed only for messages
  fields_to_matrix(unlist(cells, use.names = FALSE), widths, n_features)
}

#' Max nesting depth of a JSON text (strings ignored), without recursing in R.
#' @keywords internal
json_depth <- function(text) {
  stripped <- gsub('"(?:[^"\\\\]|\\\\.)*"', "", text, perl = TRUE)
  ch <- utf8ToInt(gsub("[^][{}]", "", stripped, perl = TRUE))
  if (!length(ch)) return(0L)
  max(cumsum(ifelse(ch == 91L | ch == 123L, 1L, -1L)))
}

#' Parse JSON text with the depth limit; 400 on invalid JSON.
#' @keywords internal
parse_json_body <- function(text) {
  if (json_depth(text) > 32) bad_request("JSON nested too deeply")
  tryCatch(jsonlite::parse_json(text, simplifyVector = FALSE),
           error = function(e) bad_request(paste("malformed JSON:", first_line(conditionMessage(e)))))
}

first_line <- function(s) substr(trimws(strsplit(s, "\n", fixed = TRUE)[[1]][1] %||% ""), 1, 120)

#' JSON records (a list of rows, each a list of scalars) → matrix with the number checks.
#' @keywords internal
rows_to_matrix <- function(rows, n_features = NULL) {
  if (!is.list(rows) || length(rows) == 0) bad_request("empty payload")
  widths <- integer(length(rows))
  fields <- vector("list", length(rows))
  for (i in seq_along(rows)) {
    r <- rows[[i]]
    if (!is.list(r) || !is.null(names(r))) bad_request(sprintf("row %d: expected an array of numbers", i))
    for (v in r) {
      if (!(is.numeric(v) && length(v) == 1)) {
        shown <- substr(as.character(jsonlite::toJSON(v, auto_unbox = TRUE, null = "null")), 1, 40)
        bad_request(sprintf("row %d: %s is not a number", i, shown))
      }
    }
    widths[i] <- length(r)
    fields[[i]] <- as.numeric(unlist(r, use.names = FALSE))
  }
  fields_to_matrix(unlist(fields, use.names = FALSE), widths, n_features)
}

#' application/json: `[[...], ...]`, one row `[...]`, or `{"instances": [[...], ...]}`.
#' @keywords internal
decode_json <- function(body, params = list(), n_features = NULL) {
  text <- body_text(body)
  if (json_depth(text) > 32) bad_request("JSON nested too deeply")
  # fast path: a numeric array of rows (or one row) simplifies to a matrix (vector);
  # not when booleans are present: simplification would coerce true to 1 (the others say 400)
  fast <- if (grepl("true|false", text)) NULL else
    tryCatch(jsonlite::fromJSON(text, simplifyVector = TRUE), error = function(e) NULL)
  if (is.numeric(fast) && !anyNA(fast) && all(is.finite(fast)) && length(fast) > 0 &&
      (is.null(dim(fast)) || length(dim(fast)) == 2)) {
    m <- if (is.matrix(fast)) fast else matrix(fast, nrow = 1)
    storage.mode(m) <- "double"
    return(fields_to_matrix(as.vector(t(m)), rep(ncol(m), nrow(m)), n_features))
  }
  value <- parse_json_body(text)
  if (is.list(value) && !is.null(names(value))) {
    if (!("instances" %in% names(value))) bad_request('expected an array of rows or {"instances": [...]}')
    value <- value$instances
  }
  if (!is.list(value) || length(value) == 0) bad_request("empty payload")
  # one row: an array of scalars
  if (!is.list(value[[1]])) value <- list(value)
  rows_to_matrix(value, n_features)
}

#' application/jsonlines: one JSON array (a row) per non-blank line.
#' @keywords internal
decode_jsonlines <- function(body, params = list(), n_features = NULL) {
  lines <- nonblank_lines(body_text(body))
  if (length(lines) == 0) bad_request("empty payload")
  rows <- lapply(seq_along(lines), function(i) {
    if (json_depth(lines[i]) > 32) bad_request(sprintf("line %d: JSON nested too deeply", i))
    tryCatch(jsonlite::parse_json(lines[i], simplifyVector = FALSE),
             error = function(e) bad_request(sprintf("line %d: malformed JSON: %s", i, first_line(conditionMessage(e)))))
  })
  rows_to_matrix(rows, n_features)
}

#' Predictions → a list of records: a vector gives one value per record; a matrix or
#' data.frame gives one row per record; factors become their labels.
#' @keywords internal
as_records <- function(p) {
  if (is.factor(p)) return(as.character(p))
  if (is.data.frame(p)) {
    p[] <- lapply(p, function(col) if (is.factor(col)) as.character(col) else col)
    return(p)
  }
  if (is.matrix(p) && ncol(p) == 1) return(as.vector(p))
  if (is.list(p) && !is.data.frame(p)) return(p)
  if (!is.null(dim(p)) && length(dim(p)) > 2) stop("predictions with more than 2 dimensions", call. = FALSE)
  if (!is.matrix(p)) p <- as.vector(p)
  p
}

#' Number of records in predictions.
#' @keywords internal
n_records <- function(p) if (is.data.frame(p) || is.matrix(p)) nrow(p) else length(p)

fmt_values <- function(x) {
  if (is.character(x)) return(x)
  if (is.logical(x)) return(ifelse(x, "true", "false"))
  if (is.integer(x)) return(as.character(x))
  format_number(x)
}

format_number <- function(x) {
  out <- as.character(x)  # 15 significant digits, no padding
  out
}

#' CSV: one line per record, newline-terminated; 2-D rows are comma-joined.
#' @keywords internal
encode_csv <- function(p) {
  if (is.matrix(p) || is.data.frame(p)) {
    cols <- lapply(seq_len(ncol(p)), function(j) fmt_values(if (is.data.frame(p)) p[[j]] else p[, j]))
    return(paste0(do.call(paste, c(cols, sep = ",")), "\n", collapse = ""))
  }
  if (is.list(p)) return(paste0(vapply(p, function(r) paste(fmt_values(unlist(r)), collapse = ","), ""), "\n", collapse = ""))
  paste0(fmt_values(p), "\n", collapse = "")
}

json_values <- function(p) {
  if (is.data.frame(p)) return(jsonlite::toJSON(p, dataframe = "values", digits = NA, na = "null"))
  jsonlite::toJSON(p, digits = NA, na = "null", auto_unbox = FALSE)
}

#' JSON: `{"predictions": [...]}`, one element per record.
#' @keywords internal
encode_json <- function(p) paste0('{"predictions":', json_values(p), "}")

#' JSON Lines: one JSON value per record, each line newline-terminated.
#' @keywords internal
encode_jsonlines <- function(p) {
  lines <- if (is.matrix(p) || is.data.frame(p)) {
    vapply(seq_len(nrow(p)), function(i) {
      row <- if (is.data.frame(p)) unlist(p[i, , drop = TRUE], use.names = FALSE) else p[i, ]
      as.character(jsonlite::toJSON(row, digits = NA, na = "null"))
    }, "")
  } else if (is.list(p)) {
    vapply(p, function(r) as.character(jsonlite::toJSON(r, digits = NA, auto_unbox = TRUE, na = "null")), "")
  } else {
    vapply(p, function(v) as.character(jsonlite::toJSON(v, digits = NA, auto_unbox = TRUE, na = "null")), "")
  }
  paste0(lines, "\n", collapse = "")
}

#' The registry: one entry per canonical media type (decode, encode), plus aliases.
#' Decoders take `(body, params, n_features)` and return a numeric matrix.
#' @keywords internal
CODECS <- list(
  "text/csv" = list(decode = decode_csv, encode = encode_csv),
  "application/json" = list(decode = decode_json, encode = encode_json),
  "application/jsonlines" = list(decode = decode_jsonlines, encode = encode_jsonlines)
)
ALIASES <- c("application/x-jsonlines" = "application/jsonlines", "application/jsonl" = "application/jsonlines")
ACCEPTED <- paste(names(CODECS), collapse = ", ")
MEDIA_TYPES <- c(names(CODECS), names(ALIASES))
