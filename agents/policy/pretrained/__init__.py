"""The shipped pretrained policies (small: a few KB of weights each).

- ``hpenv-lr-v2.1`` (the default): ``hpenv-lr-v2``'s weights, deployed with the nets the
  held-out suite measured on it (docs/results.md section 7, twelfth session): the rise
  guard (`hpenv.hyperparams.RiseGuard`), the restart with its rollback of blow-ups and
  collapses (`hpenv.restart`, ``--restart collapse``) and the fall hold
  (`hpenv.hyperparams.FallHold`). The file is `v21_from_v2` of ``hpenv-lr-v2``'s, saved;
  the tests check that it still is.
- ``hpenv-lr-v2``: the policy as meta-trained (docs/results.md section 2), no deployment
  settings; still loadable by name, and what a run gets with every net off.

Each was produced by the commands recorded in ``docs/results.md`` (meta-training on the
offline training suite only). Load one by name with `agents.policy.load_pretrained`
(``"hpenv-lr-v2.1"``), or the default with `load_default_policy`.
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


def v21_from_v2(v2: FrozenPolicy) -> FrozenPolicy:
    """``hpenv-lr-v2.1`` as built from ``hpenv-lr-v2`` (same weights; deployment settings
    only): ``v21_from_v2(load_pretrained("hpenv-lr-v2")).save(path)`` writes the shipped
    file."""
    return v2.with_deploy_flags(rise_guard="on", restart="collapse", fall_hold="on")
