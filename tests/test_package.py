"""The package as a newcomer meets it: names, commands, help texts, warnings."""

from __future__ import annotations

import agents


def test_dir_lists_the_lazily_exported_names():
    names = dir(agents)
    assert set(agents.__all__) <= set(names)
    assert "HyperController" in names
    assert "__getattr__" in names  # the module's own names stay
    assert names == sorted(names)
