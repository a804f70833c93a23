"""What SB3's time-limit bootstrap adds at the budget's end (issue 23, twentieth session).

usage: terminal_value.py MEMBER_DIR... [--episodes N] [--seed S]

For each meta-training member (a one-seed run folder: config.json, checkpoints/latest.pt),
rebuild its training environments (dummy, two envs, its own tasks and options, a new seed),
load its final PPO model and observation statistics, and run N episodes with the policy's
mean action. At each episode's budget end SB3 adds gamma x V(last observation) to the last
reward (`agents.metatrain.vec_env.BudgetEndAsTermination` says why that is a bias here);
print that term beside the episode's last reward and its return, per task, and how it moves
when the last observation says the run ended at 10x or a tenth of its rate (the features
``lr`` and ``lr_vs_initial`` shifted by one decade of the rate's range, nothing else): a
term larger for the lower rate pays the policy for annealing whatever the run's loss did.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from agents.metatrain.checkpoints import load_checkpoint, restore_checkpoint
from agents.metatrain.config import config_from_dict
from agents.metatrain.loop import training_env, training_tasks
from agents.metatrain.model import make_model
from hpenv.hyperparams import tunable
from hpenv.observation import FEATURES

LR = [f.name for f in FEATURES].index("lr")
LR_VS_INITIAL = [f.name for f in FEATURES].index("lr_vs_initial")


def decade_shifted(venv, normalised: np.ndarray, decades: float) -> np.ndarray:
    """``normalised`` (an observation as the policy sees it) with the rate moved by
    ``decades`` in the features that say where the rate is."""
    raw = venv.unnormalize_obs(normalised.copy())
    lr = tunable("lr")
    width = float(np.log10(lr.high / lr.low))
    raw[..., LR] = np.clip(raw[..., LR] + decades / width, 0.0, 1.0)
    raw[..., LR_VS_INITIAL] = np.clip(raw[..., LR_VS_INITIAL] + decades / width, -1.0, 1.0)
    return venv.normalize_obs(raw)


def member_rows(member: Path, episodes: int, seed: int) -> list[dict[str, float | str]]:
    config = config_from_dict(json.loads((member / "config.json").read_text()))
    config = dataclasses.replace(
        config, vec_env="dummy", n_envs=2, seed=seed, out_dir=None, resume=False, ensemble=1
    )
    tasks, _ = training_tasks(config)
    venv = training_env(config, tasks)
    model = make_model(config, venv)
    restore_checkpoint(load_checkpoint(member / "checkpoints" / "latest.pt"), model, venv)
    venv.training = False
    rows: list[dict[str, float | str]] = []
    returns = np.zeros(venv.num_envs)
    obs = venv.reset()
    while len(rows) < episodes:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, dones, infos = venv.step(action)
        raw = venv.get_original_reward()
        returns += raw
        for i in np.flatnonzero(dones):
            info = infos[i]
            if info.get("TimeLimit.truncated"):
                last = info["terminal_observation"]
                values = []
                for shift in (0.0, 1.0, -1.0):
                    term = model.policy.obs_to_tensor(decade_shifted(venv, last, shift))[0]
                    with torch.no_grad():
                        values.append(config.gamma * float(model.policy.predict_values(term)[0, 0]))
                rows.append(
                    {
                        "task": str(info.get("task", "?")),
                        "bootstrap": values[0],
                        "at_10x": values[1] - values[0],
                        "at_tenth": values[2] - values[0],
                        "last_reward": float(raw[i]),
                        "return": float(returns[i]),
                    }
                )
            returns[i] = 0.0
    venv.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    for member in args.members:
        rows = member_rows(member, args.episodes, args.seed)
        by_task: dict[str, list[dict[str, float | str]]] = defaultdict(list)
        for row in rows:
            by_task[str(row["task"]).split("/")[0]].append(row)
        print(f"{member}: {len(rows)} episodes ended at their budget")
        print(
            "  task            n  gamma*V(last obs)  last reward  return"
            "  rate x10: change  rate /10: change"
        )
        for task, group in [*sorted(by_task.items()), ("all", rows)]:
            b = np.array([r["bootstrap"] for r in group], float)
            last = np.array([r["last_reward"] for r in group], float)
            ret = np.array([r["return"] for r in group], float)
            up = np.array([r["at_10x"] for r in group], float)
            down = np.array([r["at_tenth"] for r in group], float)
            print(
                f"  {task:14s} {len(group):2d}  {b.mean():+.3f} (sd {b.std():.3f})"
                f"   {last.mean():+.3f}      {ret.mean():+.3f}"
                f"   {up.mean():+.3f}            {down.mean():+.3f}"
            )


if __name__ == "__main__":
    main()
