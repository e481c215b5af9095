# The golden-case fixture model with hooks (conformance/golden/README.md): the plain model plus
# `input_fn` / `output_fn`; the same behaviour as models/python/hooks/model.py and
# models/julia/hooks/model.jl. Self-contained: the file is copied alone into /opt/program.

hyperparameters <- list(scale = 1.0, offset = 0L, flag = FALSE, label = "x", tags = list(), target = "y", fail = "")

fit <- function(data, hyperparameters) {
  hp <- hyperparameters
  if (identical(hp$fail, "fit")) stop("fit failed on purpose")
  resumed <- NULL
  if (identical(hp$fail, "after-checkpoint")) {  # a spot-style stop: the next run resumes (D8)
    state <- load_checkpoint()
    if (is.null(state)) {
      save_checkpoint(list(step = 1))
      writeLines("1", file.path(checkpoint_dir(), "user-checkpoint.txt"))
      stop("stopped after checkpoint")
    }
    resumed <- state$step
  }
  train <- data[["train"]]
  typed <- hp
  typed$tags <- I(hp$tags)  # a list stays a JSON array, even with one element
  where <- cluster()
  where$hosts <- I(where$hosts)
  seen <- list(hyperparameters = typed, columns = I(names(train)), rows = nrow(train),
               first_column = I(train[[1]]), channels = I(sort(names(data), method = "radix")),
               cluster = where, resumed = resumed)
  json <- as.character(jsonlite::toJSON(seen, auto_unbox = TRUE, digits = NA, null = "null"))
  # sm_hps: the variable's JSON text as it is (the reader decodes it)
  json <- paste0(substr(json, 1, nchar(json) - 1), ',"sm_hps":', Sys.getenv("SM_HPS"), "}")
  out <- Sys.getenv("SM_OUTPUT_DATA_DIR")
  dir.create(out, recursive = TRUE, showWarnings = FALSE)
  writeLines(json, file.path(out, "seen.json"))
  structure(list(scale = hp$scale, offset = hp$offset), class = "golden_model")
}

predict_model <- function(model, X) {
  X <- as.matrix(X)
  if (any(X == -999)) stop("boom")
  out <- rowSums(X) * model$scale + model$offset
  if (any(X == -1)) out <- out[-length(out)]
  out
}

input_fn <- function(body, content_type) {
  if (content_type == "application/x-semicolon") {
    lines <- strsplit(rawToChar(body), "\n", fixed = TRUE)[[1]]
    lines <- lines[nzchar(trimws(lines))]
    return(do.call(rbind, lapply(strsplit(trimws(lines), ";", fixed = TRUE), as.numeric)))
  }
  if (content_type == "application/x-raise") stop("input refused")
  NULL
}

# shortest round-trip form, integral values without a fraction (`6|15.5`)
pipe_number <- function(x) {
  vapply(x, function(v) {
    if (v == round(v) && abs(v) < 1e15) return(sprintf("%.0f", v))
    for (digits in 15:17) {
      s <- sprintf("%.*g", digits, v)
      if (as.numeric(s) == v) break
    }
    s
  }, "")
}

output_fn <- function(predictions, accept) {
  if (accept == "application/x-pipe") return(list(paste(pipe_number(predictions), collapse = "|"), "application/x-pipe"))
  if (accept == "application/x-raise-out") stop("output refused")
  NULL
}
