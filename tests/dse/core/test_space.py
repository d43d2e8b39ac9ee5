import numpy as np
import pytest

from dse.core.problem import Variable
from dse.core.space import SearchSpace


def space():
    return SearchSpace([Variable("a", (2, 4, 8)), Variable("b", (3, 5))])


def test_decode_encode_round_trip_and_size():
    s = space()
    assert s.size() == 6
    assert s.decode((2, 1)) == {"a": 8, "b": 5}
    assert s.encode({"a": 4, "b": 3}) == (1, 0)
    assert s.highest() == (2, 1) and s.lowest() == (0, 0)
    assert s.uniform(4) is None and SearchSpace([Variable("a", (2, 4))]).uniform(4) == (1,)


def test_clip_and_random_stay_in_bounds():
    s = space()
    assert s.clip((-3, 9.6)) == (0, 1)
    genomes = s.random(np.random.default_rng(0), 500)
    assert genomes.min() == 0 and (genomes <= s.upper).all() and (genomes.max(0) == s.upper).all()


def test_bad_variables():
    with pytest.raises(ValueError, match="increasing"):
        Variable("a", (4, 2))
    with pytest.raises(ValueError, match="empty search space"):
        SearchSpace([])


def test_pinned_variables_leave_the_genome_and_come_back_in_every_configuration():
    s = SearchSpace([Variable("a", (2, 4, 8)), Variable("p", (4, 8)), Variable("b", (3, 5))], {"p": 8})
    assert s.names == ["a", "b"] and s.all_names == ["a", "p", "b"] and s.n_var == 2 and s.size() == 6
    assert s.decode((2, 1)) == {"a": 8, "p": 8, "b": 5} and list(s.decode((0, 0))) == ["a", "p", "b"]
    assert s.encode({"a": 4, "p": 8, "b": 3}) == (1, 0) and s.highest() == (2, 1)
    assert s.complete({"b": 3, "a": 2}) == {"a": 2, "p": 8, "b": 3}
    assert s.complete({"a": 2, "p": 4, "b": 3})["p"] == 8  # a search point lies in the space
    with pytest.raises(ValueError, match="'q' is not a variable"):
        SearchSpace([Variable("a", (2, 4))], {"q": 4})
    with pytest.raises(ValueError, match="pinned a=3 is not one of"):
        SearchSpace([Variable("a", (2, 4)), Variable("b", (2,))], {"a": 3})
    with pytest.raises(ValueError, match="every variable is pinned"):
        SearchSpace([Variable("a", (2, 4))], {"a": 4})
