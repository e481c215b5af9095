# T-01/T-02: both encodings, typed by the declared defaults.
decl <- list(ntree = 100L, lr = 0.1, flag = FALSE, name = "a", tags = list("x"), sizes = c(1L, 2L))
typed <- function(raw) r("typed_hyperparameters")(raw, decl)

test_that("str() and json.dumps() encodings decode to the declared types", {
  expect_identical(typed(list(ntree = "3"))$ntree, 3L)
  expect_identical(typed(list(ntree = "3.0"))$ntree, 3L)
  expect_identical(typed(list(lr = "0.5"))$lr, 0.5)
  expect_identical(typed(list(lr = "2"))$lr, 2)
  for (s in c("true", "True", "1", "yes", "Y", "on", "ON")) expect_true(typed(list(flag = s))$flag)
  for (s in c("false", "False", "0", "no", "n", "Off")) expect_false(typed(list(flag = s))$flag)
  expect_identical(typed(list(name = "\"abc\""))$name, "abc")
  expect_identical(typed(list(name = "abc"))$name, "abc")
  expect_identical(typed(list(name = "3"))$name, "3")
  expect_identical(typed(list(tags = "['a', 'b']"))$tags, c("a", "b"))
  expect_identical(typed(list(tags = "[\"a\", \"b\"]"))$tags, c("a", "b"))
  expect_identical(typed(list(sizes = "[1, 2, 3]"))$sizes, 1:3)
  expect_identical(typed(list(sizes = "(4, 5)"))$sizes, 4:5)
})

test_that("None/null keep the default; sagemaker_ keys are ignored", {
  expect_identical(typed(list(ntree = "None"))$ntree, 100L)
  expect_identical(typed(list(ntree = "null"))$ntree, 100L)
  expect_identical(typed(list(sagemaker_region = "\"eu\""))$lr, 0.1)
  expect_null(typed(list(sagemaker_region = "\"eu\""))$sagemaker_region)
})

test_that("bad values and unknown keys raise HyperparameterError naming key, value and type", {
  err <- tryCatch(typed(list(ntree = "abc")), error = function(e) e)
  expect_s3_class(err, "rosetta_HyperparameterError")
  expect_equal(conditionMessage(err), "ntree: expected an integer, got 'abc'")
  expect_error(typed(list(ntree = "2.5")), "ntree: expected an integer, got '2.5'")
  expect_error(typed(list(flag = "maybe")), "flag: expected a boolean")
  expect_error(typed(list(lr = "fast")), "lr: expected a number, got 'fast'")
  expect_error(typed(list(nope = "1", b = "2")), "unknown hyperparameter 'b', 'nope'; declared: flag, lr, name, ntree, sizes, tags", fixed = TRUE)
  expect_error(typed(list(tags = "not a list")), "tags: expected a list")
})

test_that("python literals are parsed, never evaluated", {
  expect_error(typed(list(tags = "[system('echo hi')]")), "tags: expected a list")
})

test_that("without declarations values are decoded but untyped", {
  out <- r("typed_hyperparameters")(list(a = "3", b = "abc", c = "\"x\"", d = "True"), NULL)
  expect_equal(out, list(a = 3L, b = "abc", c = "x", d = "True"))
})

test_that("SM_HPS holds the given values only, typed; lists stay lists (D4)", {
  raw <- list(ntree = "3", tags = "['a']", sagemaker_region = "\"eu\"")
  hps <- typed(raw)
  out <- r("toolkit_hyperparameters")(hps, raw, decl)
  expect_equal(names(out), c("ntree", "tags"))
  expect_equal(r("toolkit_text")(out), '{"ntree":3,"tags":["a"]}')
  expect_equal(r("toolkit_text")(out$tags), '["a"]')
  expect_equal(r("toolkit_text")(out$ntree), "3")
  untyped <- r("typed_hyperparameters")(list(a = "[1]", b = "x"), NULL)
  expect_equal(r("toolkit_text")(r("toolkit_hyperparameters")(untyped, list(a = "[1]", b = "x"))), '{"a":[1],"b":"x"}')
})
