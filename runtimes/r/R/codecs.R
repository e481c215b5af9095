# The codec registry (contract §4 /invocations): media types, Accept negotiation, and the
# decoders/encoders for CSV (B-09, D1), JSON and JSON Lines. Decoders return a numeric
# matrix (records x features) or signal a `rosetta_bad_request` with the 400 text.

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

#' The media types of an Accept header with their q (1 when unparseable), blank ones dropped.
#' @keywords internal
accept_items <- function(accept) {
  items <- lapply(strsplit(accept, ",", fixed = TRUE)[[1]], parse_media_type)
  items <- Filter(function(m) nzchar(m$type), items)
  q <- vapply(items, function(m) suppressWarnings(as.numeric(m$params[["q"]] %||% "1")), 0)
  q[is.na(q)] <- 1
  list(types = vapply(items, function(m) m$type, ""), q = q)
}

#' Negotiate the response from `Accept` (B-06, S-16, D3): the acceptable media types by q
#' (then order), `q=0` excluded; `*/*` (and an absent or empty header) stands for `default`
#' answered by the codec `fallback`; `text/*`, `application/*` for the first codec of that
#' kind (`fallback` first).
#' @param accept the Accept header, or NULL.
#' @param default the media type of an absent Accept (`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`,
#'   else the request's type, else JSON; it may have no codec: a user `output_fn` may make it).
#' @param fallback the codec answering `default`.
#' @return `c(preferred, codec)`: the first acceptable media type (what a user `output_fn` is
#'   asked for) and the first acceptable codec; NA when there is none (406 unless `output_fn`
#'   answers).
#' @keywords internal
negotiate <- function(accept, default, fallback = default) {
  if (is.null(accept) || identical(accept, "*/*")) return(c(default, fallback))
  if (accept %in% MEDIA_TYPES) return(c(accept, canonical_type(accept)))  # the common case: one exact type
  if (!nzchar(trimws(accept))) return(c(default, fallback))
  items <- accept_items(accept)
  preferred <- NA_character_
  for (i in order(-items$q, seq_along(items$q))) {
    if (items$q[i] <= 0) next
    type <- items$types[i]
    if (type == "*/*") {
      media <- default
      codec <- fallback
    } else if (endsWith(type, "/*")) {
      prefix <- substr(type, 1, nchar(type) - 1)
      hit <- c(fallback[startsWith(fallback, prefix)], names(CODECS)[startsWith(names(CODECS), prefix)])
      if (!length(hit)) next
      media <- codec <- hit[1]
    } else {
      media <- type
      codec <- canonical_type(type)
    }
    if (is.na(preferred)) preferred <- media
    if (!is.na(codec)) return(c(preferred, codec))
  }
  c(preferred, NA_character_)
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

#' Check the fields of the records and build the matrix. Rows are numbered by record; the
#' first bad record is reported, and within it its width before its fields (as in every
#' runtime): `row 2 has 2 columns, expected 3`, `row 1: 'x' is not a number`,
#' `row 1: non-finite value`.
#' @param fields all fields, record after record (character, or numbers already).
#' @param widths the number of fields of each record.
#' @param n_features the width every record must have (else the first record's).
#' @param hint appended to the message when a field of row 1 is not a number (D1).
#' @param values the fields as numbers, when the caller has them (NA: not a number).
#' @keywords internal
fields_to_matrix <- function(fields, widths, n_features = NULL, hint = NULL, values = NULL) {
  if (length(widths) == 0) bad_request("empty payload")
  expected <- if (is.null(n_features)) widths[1] else n_features
  if (is.null(values)) values <- if (is.numeric(fields)) fields else suppressWarnings(as.numeric(fields))
  wrong <- which(widths != expected)
  bad <- which(!is.finite(values))
  if (length(wrong) || length(bad)) {
    field_row <- if (length(bad)) findInterval(bad[1] - 1, cumsum(c(0, widths))) else Inf
    if (length(wrong) && wrong[1] <= field_row) {
      bad_request(sprintf("row %d has %d columns, expected %d", wrong[1], widths[wrong[1]], expected))
    }
    if (is.na(values[bad[1]]) && !is.nan(values[bad[1]])) {
      shown <- gsub("[\r\n]", " ", substr(trimws(fields[bad[1]]), 1, 40))
      message <- sprintf("row %d: '%s' is not a number", field_row, shown)
      if (field_row == 1 && !is.null(hint)) message <- paste(message, hint)
      bad_request(message)
    }
    bad_request(sprintf("row %d: non-finite value", field_row))
  }
  if (expected == 0) bad_request("row 1 has 0 columns")
  matrix(values, nrow = length(widths), byrow = TRUE)
}

#: what every runtime accepts as a CSV number (as.numeric() alone also takes "0x10" and "1e")
NUMBER <- "^\\s*[+-]?(?:(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|nan|inf|infinity)\\s*$"

#' CSV fields as numbers: as.numeric(), with fields that as.numeric() reads but the contract
#' does not (hexadecimal, a bare exponent) made NA. Only fields with an x or e are checked
#' against `NUMBER`: the others mean the same to both.
#' @keywords internal
csv_values <- function(fields, text) {
  values <- suppressWarnings(as.numeric(fields))
  if (grepl("[eExX]", text)) {
    check <- which(grepl("[eExX]", fields) & !is.na(values))
    bad <- check[!grepl(NUMBER, fields[check], perl = TRUE, ignore.case = TRUE)]
    values[bad] <- NA_real_
  }
  values
}

#' The fields of CSV lines: a comma split, or, when the text has quotes, R's CSV reader
#' (`"4,5"` is one field, quotes removed). A trailing comma ends an empty last field.
#' @keywords internal
csv_cells <- function(lines, quoted = FALSE) {
  if (quoted) {
    return(lapply(lines, function(line) suppressWarnings(scan(
      text = line, what = "", sep = ",", quote = "\"", quiet = TRUE, na.strings = character(0),
      strip.white = FALSE, blank.lines.skip = FALSE, comment.char = "", allowEscapes = FALSE))))
  }
  cells <- strsplit(lines, ",", fixed = TRUE)
  # "1,2," has an empty last field that strsplit drops
  trailing <- endsWith(lines, ",")
  if (any(trailing)) cells[trailing] <- lapply(cells[trailing], function(c) c(c, ""))
  cells
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

#' Options of the decoders, fixed when the model is loaded: the request columns (D2) and
#' whether CSV requests may start with a header (`ROSETTA_CSV_HEADER`, D1).
#' @param n_features the number of request columns, or NULL.
#' @param features their names, or NULL.
#' @param csv_header `ROSETTA_CSV_HEADER` (settings).
#' @keywords internal
decode_options <- function(n_features = NULL, features = NULL, csv_header = FALSE) {
  list(n_features = n_features, features = features, csv_header = isTRUE(csv_header))
}

# the 400 text's fix for a header row sent to a model that expects none (D1)
HEADER_HINT <- "(a header row? send 'Content-Type: text/csv; header=present' or set ROSETTA_CSV_HEADER=true)"

#' Is this first line of a CSV request a header (D1)? Yes if its fields (trimmed, quotes
#' removed) are the request columns, or if some field is not a number; a line of numbers is
#' a record.
#' @keywords internal
is_header_line <- function(line, features = NULL) {
  fields <- gsub('^"|"$', "", trimws(strsplit(line, ",", fixed = TRUE)[[1]]))
  if (endsWith(line, ",")) fields <- c(fields, "")
  if (!is.null(features) && identical(fields, features)) return(TRUE)
  values <- suppressWarnings(as.numeric(fields))
  any(is.na(values) & !is.nan(values))
}

#' CSV (B-08, B-09, D1): headerless, unless `header=present` in the Content-Type or
#' `ROSETTA_CSV_HEADER=true` (and not `header=absent`); then the first line is dropped only if
#' it is a header (`is_header_line()`), never another line. Blank lines skipped, final
#' newline optional.
#' @keywords internal
decode_csv <- function(body, params = list(), opts = decode_options()) {
  lines <- nonblank_lines(body_text(body))
  header <- params[["header"]]
  expected <- if (is.null(header)) opts$csv_header else {
    header <- tolower(header)
    header == "present" || (header != "absent" && opts$csv_header)
  }
  if (expected && length(lines) && is_header_line(lines[1], opts$features)) lines <- lines[-1]
  if (length(lines) == 0) bad_request("empty payload")
  text <- if (length(lines) == 1) lines else paste(lines, collapse = "\n")
  cells <- csv_cells(lines, grepl('"', text, fixed = TRUE))
  fields <- unlist(cells, use.names = FALSE)
  # as.numeric() accepts surrounding blanks, so fields are trimmed only for messages
  fields_to_matrix(fields, lengths(cells), opts$n_features, if (!expected) HEADER_HINT, csv_values(fields, text))
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

#' A JSON value as compact JSON, cut to 40 characters (the same text in every runtime).
#' @keywords internal
json_shown <- function(v) substr(as.character(jsonlite::toJSON(v, auto_unbox = TRUE, null = "null", digits = NA)), 1, 40)

#' JSON records (a list of rows, each a list of scalars) → matrix; each row is checked in
#' turn: an array, of the expected width, of numbers.
#' @keywords internal
rows_to_matrix <- function(rows, n_features = NULL) {
  if (!is.list(rows) || length(rows) == 0) bad_request("empty payload")
  width <- n_features
  fields <- vector("list", length(rows))
  for (i in seq_along(rows)) {
    r <- rows[[i]]
    if (!is.list(r) || !is.null(names(r))) bad_request(sprintf("row %d: expected an array of numbers", i))
    if (is.null(width)) width <- length(r)
    if (length(r) != width) bad_request(sprintf("row %d has %d columns, expected %d", i, length(r), width))
    for (v in r) {
      if (!(is.numeric(v) && length(v) == 1)) bad_request(sprintf("row %d: %s is not a number", i, json_shown(v)))
    }
    fields[[i]] <- as.numeric(unlist(r, use.names = FALSE))
  }
  fields_to_matrix(unlist(fields, use.names = FALSE), rep(width, length(rows)), n_features)
}

#' application/json: `[[...], ...]`, one row `[...]`, or `{"instances": ...}` of either.
#' @keywords internal
decode_json <- function(body, params = list(), opts = decode_options()) {
  n_features <- opts$n_features
  text <- body_text(body)
  if (!grepl("[^ \t\r\n]", text)) bad_request("empty payload")
  if (json_depth(text) > 32) bad_request("JSON nested too deeply")
  # fast path: a top-level array of numeric rows (or one row) simplifies to a matrix (vector);
  # not when booleans are present: simplification would coerce true to 1 (the others say 400)
  fast <- if (!startsWith(trimws(text, "left"), "[") || grepl("true|false", text)) NULL else
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
  if (!is.list(value) || !is.null(names(value))) bad_request('expected an array of rows or {"instances": [...]}')
  if (length(value) == 0) bad_request("empty payload")
  # one row: an array of numbers only
  if (all(vapply(value, function(v) is.numeric(v) && length(v) == 1, TRUE))) value <- list(value)
  rows_to_matrix(value, n_features)
}

#' application/jsonlines: one JSON array (a row) per non-blank line.
#' @keywords internal
decode_jsonlines <- function(body, params = list(), opts = decode_options()) {
  n_features <- opts$n_features
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
#' Decoders take `(body, params, opts)` (`decode_options()`) and return a numeric matrix.
#' @keywords internal
CODECS <- list(
  "text/csv" = list(decode = decode_csv, encode = encode_csv),
  "application/json" = list(decode = decode_json, encode = encode_json),
  "application/jsonlines" = list(decode = decode_jsonlines, encode = encode_jsonlines)
)
ALIASES <- c("application/x-jsonlines" = "application/jsonlines", "application/jsonl" = "application/jsonlines")
ACCEPTED <- paste(names(CODECS), collapse = ", ")
MEDIA_TYPES <- c(names(CODECS), names(ALIASES))
