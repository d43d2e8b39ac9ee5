import tests.dse.toy  # noqa: F401 - registers the torch-free "toy" problem for framework tests
