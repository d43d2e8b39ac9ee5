"""Registry.get: registered names, and 'package.module:attr' import paths (out-of-tree code)."""

from __future__ import annotations

import sys

import pytest

from dse.core.registry import Registry, import_object


def test_registered_names_resolve_and_unknown_names_list_the_known_ones():
    reg: Registry[object] = Registry("widget")
    reg.register("lazy", "collections:OrderedDict")
    reg.register("now", dict)
    assert reg.get("now") is dict
    assert reg.get("lazy") is import_object("collections:OrderedDict")
    with pytest.raises(KeyError) as e:
        reg.get("nope")
    assert "unknown widget 'nope'; known: lazy, now" in e.value.args[0]


def test_an_import_path_resolves_without_being_registered():
    reg: Registry[object] = Registry("widget")
    assert reg.get("collections:OrderedDict") is import_object("collections:OrderedDict")
    assert reg.get("os.path:join") is import_object("os.path:join")
    assert reg.names() == []  # nothing registered: `compare.algorithms: [all]` stays the built-in set


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("no_such_module_xyz:Thing", "widget 'no_such_module_xyz:Thing': cannot import 'no_such_module_xyz'"),
        ("collections:NoSuchThing", "widget 'collections:NoSuchThing': 'collections' has no attribute"),
        (":Thing", "widget ':Thing': ':Thing' is not an import path"),
    ],
)
def test_an_unimportable_path_is_a_one_line_key_error(path, words):
    with pytest.raises(KeyError) as e:
        Registry("widget").get(path)
    msg = e.value.args[0]
    assert msg.startswith(words) and "\n" not in msg


def test_a_module_failing_on_import_is_a_one_line_key_error(tmp_path, monkeypatch):
    (tmp_path / "broken_mod_for_registry.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_mod_for_registry", raising=False)
    with pytest.raises(KeyError) as e:
        Registry("widget").get("broken_mod_for_registry:X")
    assert e.value.args[0] == "widget 'broken_mod_for_registry:X': RuntimeError: boom"
