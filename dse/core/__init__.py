"""The vocabulary every other part speaks: problem, variables, space, evaluations, objectives, config."""
