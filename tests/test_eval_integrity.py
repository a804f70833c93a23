"""Results that could be wrong without anyone noticing (issue 21): a resume with another
policy, bootstrap intervals that change on every rewrite, a torn ``results.csv`` header,
two processes writing one folder, third-party warnings on the user's terminal."""

from __future__ import annotations

import warnings

import numpy as np


def _scores() -> dict[tuple[str, str, float, int], float]:
    rng = np.random.default_rng(3)
    scores = {}
    for seed in range(5):
        for task in ("a", "b", "c"):
            for method, shift in (("static", 0.0), ("policy", 0.02), ("linear", 0.01)):
                scores[(method, task, 1.0, seed)] = 0.5 + shift + 0.05 * rng.random()
    return scores


def test_rliable_intervals_are_the_same_for_the_same_scores():
    from agents.evaluation.aggregate import rliable_section

    scores = _scores()
    np.random.seed(1)  # noqa: NPY002 (the global generator rliable draws from)
    first = rliable_section(scores, ["policy", "static", "linear"])
    np.random.seed(2)  # noqa: NPY002
    np.random.random(17)  # noqa: NPY002
    second = rliable_section(scores, ["policy", "static", "linear"])
    assert first == second
    # a method's intervals do not depend on which other methods are aggregated
    alone = rliable_section(scores, ["policy", "static"])
    policy_row = next(line for line in first if line.startswith("| policy |"))
    assert policy_row in alone
    state = np.random.get_state()  # noqa: NPY002
    rliable_section(scores, ["policy", "static"])
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002


def test_rliable_section_raises_no_third_party_warnings():
    from agents.evaluation.aggregate import rliable_section

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whatever pytest's configuration filters
        lines = rliable_section(_scores(), ["policy", "static"])
    assert any(line.startswith("| policy |") for line in lines)
