"""The shipped pretrained policy (small: a few KB of weights).

Produced by the command recorded in ``docs/results.md`` (meta-training on the
offline training suite only) and loaded with `load_default_policy`.
"""

from __future__ import annotations

from pathlib import Path

from agents.policy.artifact import FrozenPolicy, load_policy

DEFAULT_POLICY = Path(__file__).with_name("hpenv-lr-v2.pt")


def load_default_policy() -> FrozenPolicy:
    """Load the shipped policy.

    Raises:
        FileNotFoundError: The package was installed without its policy file.
    """
    if not DEFAULT_POLICY.is_file():
        raise FileNotFoundError(
            f"the shipped policy {DEFAULT_POLICY} is missing; reinstall hpenv or pass --policy"
        )
    return load_policy(DEFAULT_POLICY)
