"""Black-box SageMaker contract conformance suite."""
