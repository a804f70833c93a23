"""The shipped pretrained policies (small: a few KB of weights each).

Each was produced by the command recorded in ``docs/results.md`` (meta-training
on the offline training suite only). Load one by name with
`agents.policy.load_pretrained` (``"hpenv-lr-v2"``), or the default with
`load_default_policy`.
"""

from __future__ import annotations

from pathlib import Path

from agents.policy.artifact import FrozenPolicy
from agents.policy.hub import DEFAULT_POLICY_NAME, load_pretrained

#: The artifact file of the default shipped policy.
DEFAULT_POLICY = Path(__file__).with_name(f"{DEFAULT_POLICY_NAME}.pt")


def load_default_policy() -> FrozenPolicy:
    """Load the default shipped policy.

    Raises:
        FileNotFoundError: The package was installed without its policy file.
    """
    if not DEFAULT_POLICY.is_file():
        raise FileNotFoundError(
            f"the shipped policy {DEFAULT_POLICY} is missing; reinstall hpenv or pass --policy"
        )
    return load_pretrained(DEFAULT_POLICY)
