library(testthat)
library(rosetta)
test_check("rosetta")
