# Hyperparameters (T-01, T-02): every value arrives as a string in one of two encodings,
# `str(v)` ("3", "True", "['a', 'b']") or `json.dumps(v)` ("\"abc\"", "true", "[1, 2]").
# Decode per value (JSON if valid, else the raw string), then coerce to the type implied by
# the user's defaults `hyperparameters <- list(...)` in model.R.

#' Decode one hyperparameter string: the JSON value if valid JSON, else the raw string.
#' `None`/`null` decode to NULL (missing: the default applies).
#' @param s a string from hyperparameters.json.
#' @keywords internal
decode_hp <- function(s) {
  if (!is.character(s)) return(s)  # a non-string (hand-written JSON) is already decoded
  if (identical(s, "None")) return(NULL)
  if (isTRUE(jsonlite::validate(s))) return(jsonlite::parse_json(s, simplifyVector = TRUE))
  s
}

#' Parse a Python-literal list/dict (`['a', 1, True]`) safely: rewrite the tokens to JSON and
#' parse that; nothing is ever evaluated as code.
#' @keywords internal
parse_python_literal <- function(s) {
  if (!grepl("^\\s*[\\[{(]", s)) return(NULL)
  # single-quoted strings -> JSON strings; True/False/None -> JSON literals; tuples -> lists
  parts <- regmatches(s, gregexpr("'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|[^'\"]+", s, perl = TRUE))[[1]]
  out <- vapply(parts, function(p) {
    if (startsWith(p, "'")) {
      inner <- substr(p, 2, nchar(p) - 1)
      inner <- gsub("\\\\'", "'", inner)
      return(as.character(jsonlite::toJSON(inner, auto_unbox = TRUE)))
    }
    if (startsWith(p, "\"")) return(p)
    p <- gsub("\\bTrue\\b", "true", p, perl = TRUE)
    p <- gsub("\\bFalse\\b", "false", p, perl = TRUE)
    p <- gsub("\\bNone\\b", "null", p, perl = TRUE)
    chartr("()", "[]", p)
  }, "")
  json <- paste(out, collapse = "")
  if (!isTRUE(jsonlite::validate(json))) return(NULL)
  jsonlite::parse_json(json, simplifyVector = TRUE)
}

hp_type <- function(default) {
  if (is.null(default)) return("any")
  if (is.list(default) || length(default) != 1) return("list")
  if (is.logical(default)) return("boolean")
  if (is.integer(default)) return("integer")
  if (is.numeric(default)) return("number")
  if (is.character(default)) return("string")
  "any"
}

hp_type_phrase <- c(integer = "an integer", number = "a number", boolean = "a boolean (true/false)",
                    string = "a string", list = "a list")

#' Coerce one decoded value to the type of its declared default.
#' @param key the hyperparameter name (for the message).
#' @param raw the original string (for the message).
#' @param value the decoded value.
#' @param default the declared default (its type is the declared type).
#' @keywords internal
coerce_hp <- function(key, raw, value, default) {
  type <- hp_type(default)
  bad <- function() rosetta_stop("HyperparameterError", sprintf(
    "%s: expected %s, got '%s'", key, hp_type_phrase[[type]], paste(raw, collapse = ",")))
  if (type == "any") return(value)
  if (type == "string") {
    # str(v) of a number decodes as JSON to a number: the string is the raw text
    if (is.character(value) && length(value) == 1) return(value)
    if (is.character(raw) && length(raw) == 1) return(raw)
    bad()
  }
  if (type == "list") {
    if (is.character(value) && length(value) == 1 && identical(value, raw)) {
      value <- parse_python_literal(raw)
      if (is.null(value)) bad()
    }
    if (is.atomic(default) && length(default) > 0) {
      as_type <- switch(class(default)[1], integer = as.integer, numeric = as.numeric,
                        logical = as.logical, character = as.character, identity)
      conv <- suppressWarnings(as_type(unlist(value)))
      if (anyNA(conv) && !anyNA(value)) bad()
      return(conv)
    }
    return(value)
  }
  if (length(value) != 1) bad()
  if (type == "boolean") {
    if (is.logical(value) && !is.na(value)) return(value)
    key_val <- tolower(as.character(value))
    if (key_val %in% TRUE_WORDS) return(TRUE)
    if (key_val %in% FALSE_WORDS) return(FALSE)
    bad()
  }
  num <- if (is.numeric(value)) value else suppressWarnings(as.numeric(value))
  if (is.logical(value) || is.na(num) || !is.finite(num)) bad()
  if (type == "integer") {
    if (num != round(num) || abs(num) > .Machine$integer.max) bad()
    return(as.integer(num))
  }
  as.numeric(num)
}

#' Whether a hyperparameter key is SageMaker's own, never the user's.
#'
#' `sagemaker_*` (the SDK's) and `_tuning_objective_metric` (added to every training job of a
#' tuning job): accepted and left out of the user's hyperparameters.
#' @param key character vector of keys.
#' @return logical vector.
#' @keywords internal
reserved_hyperparameter <- function(key) {
  startsWith(key, "sagemaker_") | key == "_tuning_objective_metric"
}

#' Decode and type the raw hyperparameters (T-01, T-02).
#'
#' SageMaker's own keys (`sagemaker_*`, `_tuning_objective_metric`) are ignored. With declared defaults, an unknown key is an
#' error and missing keys take their default; without, values are passed decoded but untyped.
#' @param raw named list of strings (hyperparameters.json).
#' @param defaults the user's `hyperparameters` list, or NULL.
#' @return a named list.
#' @keywords internal
typed_hyperparameters <- function(raw, defaults = NULL) {
  raw <- raw[!reserved_hyperparameter(names(raw) %||% character(0))]
  out <- if (is.null(defaults)) list() else defaults
  unknown <- if (is.null(defaults)) character(0) else setdiff(names(raw), names(defaults))
  if (length(unknown)) {
    rosetta_stop("HyperparameterError", sprintf(
      "unknown hyperparameter %s; declared: %s", paste0("'", sort(unknown, method = "radix"), "'", collapse = ", "),
      paste(sort(names(defaults), method = "radix"), collapse = ", ")))
  }
  for (key in names(raw)) {
    value <- decode_hp(raw[[key]])
    if (is.null(value)) next  # None/null: the default applies
    out[key] <- list(if (is.null(defaults)) value else coerce_hp(key, raw[[key]], value, defaults[[key]]))
  }
  out
}

#' The hyperparameters for `SM_HPS` / `SM_HP_*` (D4, E-04): only those given in
#' hyperparameters.json (no defaults added), SageMaker's own keys excluded, decoded and typed;
#' list values are marked `I()` so that a one-element list stays a JSON array.
#' @param hps the typed hyperparameters (`typed_hyperparameters()`).
#' @param raw the raw map of hyperparameters.json.
#' @param defaults the user's declared defaults, or NULL.
#' @keywords internal
toolkit_hyperparameters <- function(hps, raw, defaults = NULL) {
  given <- names(raw) %||% character(0)
  given <- given[!reserved_hyperparameter(given) & given %in% names(hps)]
  # None/null take the default: not a value given
  given <- given[!vapply(given, function(key) is.null(decode_hp(raw[[key]])), TRUE)]
  out <- hps[given]
  for (key in given) {
    declared <- !is.null(defaults) && key %in% names(defaults)
    is_list <- if (declared) hp_type(defaults[[key]]) == "list" else
      length(out[[key]]) != 1 || grepl("^\\s*[\\[(]", as.character(raw[[key]])[1])
    if (is_list && !is.null(out[[key]])) out[[key]] <- I(out[[key]])
  }
  out
}
