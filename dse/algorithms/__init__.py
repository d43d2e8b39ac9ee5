"""Search algorithms; importing this package registers the built-in ones in `dse.core.registry.ALGORITHMS`."""

from dse.algorithms import (  # noqa: F401 - imported to register
    bisection,
    exhaustive,
    greedy,
    ilp,
    pymoo_algorithms,
    pymoo_moea,
    random_search,
)
from dse.algorithms.base import Algorithm, SearchContext

__all__ = ["Algorithm", "SearchContext"]
