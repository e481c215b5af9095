# Codecs and negotiation (contract §4): headerless CSV (B-09), JSON, JSON Lines.
dec <- function(type, body, nf = NULL, params = list(), features = NULL, header = FALSE) {
  r("CODECS")[[type]]$decode(charToRaw(body), params, r("decode_options")(nf, features, header))
}
bad <- function(expr) tryCatch({ expr; NA_character_ }, rosetta_bad_request = function(e) conditionMessage(e))

test_that("CSV: no header, optional final newline, CRLF, BOM, blank lines", {
  m <- dec("text/csv", "5.1,3.5,1.4,0.2")
  expect_equal(dim(m), c(1L, 4L))
  expect_equal(dec("text/csv", "1,2\n3,4\n"), matrix(c(1, 3, 2, 4), 2))
  expect_equal(dec("text/csv", "1,2\r\n\r\n3,4"), matrix(c(1, 3, 2, 4), 2))
  expect_equal(r("decode_csv")(c(as.raw(c(0xef, 0xbb, 0xbf)), charToRaw("1,2"))), matrix(c(1, 2), 1))
  expect_equal(dec("text/csv", "a,b\n1,2", params = list(header = "present")), matrix(c(1, 2), 1))
  # fields are not trimmed before as.numeric() (it skips blanks itself); whitespace-only lines are blank
  expect_equal(dec("text/csv", " 1 ,\t2\r\n  \t \r\n3, 4 \r\n"), matrix(c(1, 3, 2, 4), 2))
  expect_equal(bad(dec("text/csv", "1,2,3\n3,4,", nf = 3)), "row 2: '' is not a number")
})

test_that("CSV errors have the contract's messages", {
  expect_equal(bad(dec("text/csv", "")), "empty payload")
  expect_equal(bad(dec("text/csv", "\n\n")), "empty payload")
  expect_equal(bad(dec("text/csv", "1,2\n3,4\nabc,5")), "row 3: 'abc' is not a number")
  hint <- " (a header row? send 'Content-Type: text/csv; header=present' or set ROSETTA_CSV_HEADER=true)"
  expect_equal(bad(dec("text/csv", "1, x ")), paste0("row 1: 'x' is not a number", hint))
  expect_equal(bad(dec("text/csv", "1, x ", header = TRUE)), "empty payload")
  expect_equal(bad(dec("text/csv", "1,2,3,4\n1,2,3")), "row 2 has 3 columns, expected 4")
  expect_equal(bad(dec("text/csv", "1,2,3", nf = 4)), "row 1 has 3 columns, expected 4")
  expect_equal(bad(dec("text/csv", "nan,1")), "row 1: non-finite value")
  expect_equal(bad(dec("text/csv", "1,inf")), "row 1: non-finite value")
  expect_equal(bad(r("decode_csv")(as.raw(c(0x31, 0xff, 0x2c, 0x32)))), "invalid UTF-8")
})

test_that("CSV header rule (D1): only an expected header, only if it is one, only the first line", {
  feats <- c("a", "b")
  expect_equal(dec("text/csv", "a,b\n1,2", header = TRUE), matrix(c(1, 2), 1))
  expect_equal(dec("text/csv", "1,2\n3,4", header = TRUE), matrix(c(1, 3, 2, 4), 2))   # numbers: a record
  expect_equal(dec("text/csv", "1,2\n3,4", params = list(header = "present")), matrix(c(1, 3, 2, 4), 2))
  expect_equal(dec("text/csv", " \"a\" , b\n1,2", nf = 2, features = feats, header = TRUE), matrix(c(1, 2), 1))
  expect_equal(bad(dec("text/csv", "a,b\n1,2", header = TRUE, params = list(header = "absent"))),
               "row 1: 'a' is not a number (a header row? send 'Content-Type: text/csv; header=present' or set ROSETTA_CSV_HEADER=true)")
  expect_equal(bad(dec("text/csv", "a,b\nc,d", header = TRUE)), "row 1: 'c' is not a number")  # never a second header
  expect_equal(bad(dec("text/csv", "1,2\na,b", header = TRUE)), "row 2: 'a' is not a number")
  expect_equal(bad(dec("text/csv", "a,b\n", header = TRUE)), "empty payload")
  expect_equal(bad(dec("text/csv", "1,2\n1,x")), "row 2: 'x' is not a number")  # the hint is for row 1 only
})

test_that("JSON: array of rows, one row, instances; depth limit", {
  expect_equal(dec("application/json", "[[1,2],[3,4]]"), matrix(c(1, 3, 2, 4), 2))
  expect_equal(dec("application/json", "[1,2]"), matrix(c(1, 2), 1))
  expect_equal(dec("application/json", "{\"instances\": [[1,2]]}"), matrix(c(1, 2), 1))
  expect_equal(bad(dec("application/json", "[[1,2],[3]]")), "row 2 has 1 columns, expected 2")
  expect_equal(bad(dec("application/json", "[[1,\"a\"]]")), "row 1: \"a\" is not a number")
  expect_equal(bad(dec("application/json", "[[true,2]]")), "row 1: true is not a number")  # no coercion to 1
  expect_match(bad(dec("application/json", "[[1,2]")), "^malformed JSON: ")
  expect_match(bad(dec("application/json", strrep("[", 40))), "nested too deeply")
  expect_equal(bad(dec("application/json", "[]")), "empty payload")
})

test_that("JSON Lines: one row per non-blank line", {
  expect_equal(dec("application/jsonlines", "[1,2]\n\n[3,4]\n"), matrix(c(1, 3, 2, 4), 2))
  expect_match(bad(dec("application/jsonlines", "[1,2]\n{")), "^line 2: malformed JSON")
})

test_that("encoders write one record per input record", {
  expect_equal(r("encode_csv")(c("a", "b")), "a\nb\n")
  expect_equal(r("encode_csv")(matrix(c(1, 2, 3, 4), 2)), "1,3\n2,4\n")
  expect_equal(r("encode_json")(c("a")), "{\"predictions\":[\"a\"]}")
  expect_equal(r("encode_json")(matrix(c(1, 2, 3, 4), 2)), "{\"predictions\":[[1,3],[2,4]]}")
  expect_equal(r("encode_jsonlines")(c(0.5, 1)), "0.5\n1\n")
  expect_equal(r("encode_jsonlines")(matrix(c(1, 2, 3, 4), 2)), "[1,3]\n[2,4]\n")
  expect_equal(r("as_records")(factor(c("x", "y"))), c("x", "y"))
})

test_that("Accept negotiation: default, wildcards, q-values, aliases; the preferred type (D3)", {
  neg <- function(accept, default, fallback = default) r("negotiate")(accept, default, fallback)[2]
  expect_equal(neg(NULL, "text/csv"), "text/csv")
  expect_equal(neg("", "application/json"), "application/json")
  expect_equal(neg("*/*", "application/json"), "application/json")
  expect_equal(neg("application/json;q=0.5, text/csv", "application/json"), "text/csv")
  expect_equal(neg("text/csv;q=0, application/*", "text/csv"), "application/json")
  expect_equal(neg("application/x-jsonlines", "text/csv"), "application/jsonlines")
  expect_equal(neg("application/jsonl", "text/csv"), "application/jsonlines")  # exact-match fast path
  expect_equal(neg("  ", "text/csv"), "text/csv")
  expect_true(is.na(neg("text/html", "text/csv")))
  expect_true(is.na(neg("text/csv;q=0", "text/csv")))
  both <- r("negotiate")
  expect_equal(both("application/x-a;q=0.5, application/x-b, text/csv", "text/csv"), c("application/x-b", "text/csv"))
  expect_equal(both("application/x-b", "text/csv"), c("application/x-b", NA))
  expect_equal(both(NULL, "application/x-pipe", "text/csv"), c("application/x-pipe", "text/csv"))
  expect_equal(both("text/csv;q=0", "text/csv"), c(NA_character_, NA_character_))
  pm <- r("parse_media_type")
  expect_equal(pm("text/csv"), list(type = "text/csv", params = list()))
  expect_equal(pm(" Text/CSV ; header=present"), list(type = "text/csv", params = list(header = "present")))
})
