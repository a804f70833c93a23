"""A frozen policy against the task's static default hyperparameters.

For each task, start factor and seed, two episodes run with the same budget,
the same training seed and the same initial hyperparameters (the task default
learning rate times the start factor): one driven by the policy, one that
never changes anything. The table reports final validation accuracy (mean and
standard deviation over seeds) and how often the policy won.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from agents.policy import FrozenPolicy, PolicyActor
from agents.rollout import EpisodeResult, keep_action, run_episode
from hpenv.env import HPTuneEnv
from hpenv.plan import FIDELITY, Fidelity
from hpenv.tasks import get_task


@dataclass
class Comparison:
    """Paired episodes of one task and start factor."""

    task: str
    start_factor: float
    policy: list[EpisodeResult]
    static: list[EpisodeResult]

    @staticmethod
    def _accuracy(results: list[EpisodeResult]) -> np.ndarray:
        return np.array([0.0 if r.diverged else r.val_accuracy for r in results])

    def row(self) -> dict[str, float | str | int]:
        policy, static = self._accuracy(self.policy), self._accuracy(self.static)
        return {
            "task": self.task,
            "start_lr": self.start_factor,
            "seeds": len(policy),
            "policy_acc": float(policy.mean()),
            "policy_std": float(policy.std(ddof=1)) if len(policy) > 1 else math.nan,
            "static_acc": float(static.mean()),
            "static_std": float(static.std(ddof=1)) if len(static) > 1 else math.nan,
            "policy_wins": int((policy > static).sum()),
            "policy_diverged": sum(r.diverged for r in self.policy),
            "static_diverged": sum(r.diverged for r in self.static),
        }


def compare_static(
    policy: FrozenPolicy,
    tasks: Sequence[str],
    seeds: Sequence[int],
    start_factors: Sequence[float] = (1.0,),
    fidelity: dict[str, Fidelity] | None = None,
    device: str = "cpu",
    data_dir: str | None = None,
) -> list[Comparison]:
    """Run the paired episodes (see module docstring)."""
    config = policy.metadata.env_config
    fidelity = FIDELITY if fidelity is None else fidelity
    env = HPTuneEnv(
        [get_task(t) for t in tasks],
        tuned=policy.metadata.tuned,
        action_mode=policy.metadata.action_mode,  # type: ignore[arg-type]
        decisions=int(config.get("decisions", 20)),
        reward=str(config.get("reward", "log_val_loss")),
        fidelity=fidelity,
        device=device,
        data_dir=data_dir,
    )
    actor = PolicyActor(policy)
    static = keep_action(env)
    comparisons = []
    total = len(tasks) * len(start_factors) * len(seeds) * 2
    with tqdm(total=total, unit="episode", desc="compare") as bar:
        for name in tasks:
            default_lr = get_task(name).defaults.lr
            for factor in start_factors:
                options = {"task": name, "hparams": {"lr": default_lr * factor}}
                pair = Comparison(name, factor, [], [])
                for seed in seeds:
                    pair.policy.append(run_episode(env, actor, seed, options, on_reset=actor.reset))
                    pair.static.append(run_episode(env, static, seed, options))
                    bar.update(2)
                comparisons.append(pair)
    return comparisons


def markdown_table(comparisons: Sequence[Comparison]) -> str:
    """Final validation accuracy, mean +- std over seeds, policy vs static default."""
    lines = [
        "| task | start lr (x default) | seeds | policy | static default | policy wins | "
        "diverged (policy / static) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        r = c.row()
        lines.append(
            f"| {r['task']} | {r['start_lr']:g} | {r['seeds']} | "
            f"{r['policy_acc']:.4f} ± {r['policy_std']:.4f} | "
            f"{r['static_acc']:.4f} ± {r['static_std']:.4f} | {r['policy_wins']}/{r['seeds']} | "
            f"{r['policy_diverged']} / {r['static_diverged']} |"
        )
    return "\n".join(lines)
