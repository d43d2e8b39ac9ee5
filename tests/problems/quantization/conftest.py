"""Fixtures shared by the quantization tests."""

import pytest

from tests.problems.quantization.deploy_problem import small_problem


@pytest.fixture(scope="session")
def deploy_problem(tmp_path_factory):
    """The small resnet8 problem of `deploy_problem` (baseline trained once per session)."""
    return small_problem(tmp_path_factory.mktemp("deploy"))
