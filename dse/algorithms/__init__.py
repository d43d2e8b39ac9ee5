"""Search algorithms; importing this package registers the built-in ones in `dse.registry.ALGORITHMS`."""

from dse.algorithms import pymoo_moea, random_search  # noqa: F401 - imported to register
from dse.algorithms.base import Algorithm, SearchContext

__all__ = ["Algorithm", "SearchContext"]
