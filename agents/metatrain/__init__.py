"""Meta-training: one PPO agent across many `HPTuneEnv` tasks, checkpointed and resumable.

| module | what lives there |
|---|---|
| `config` | `MetaTrainConfig` (every CLI flag), resuming a run's own options |
| `loop` | `meta_train`: the training loop, signals, freezing; `--ensemble K` (K seeds) |
| `adapt` | `adapt_policy`: few-shot adaptation of a frozen policy to one new task |
| `adapt_config` | `AdaptConfig` (the flags of `scripts/adapt_policy.py`), episode size |
| `suite` | task suites (training, held-out) and building their environments |
| `vec_env` | the vectorised environments (subprocess, in-process, population, Ray) |
| `population_vec` | `PopulationVecEnv`: N population members as one batched vectorised env |
| `ray_vec` | `RayVecEnv`: environments in Ray actors on a cluster (imports Ray) |
| `population_tasks` | where a population's member tasks come from (synthetic, one real task) |
| `model` | the PPO / RecurrentPPO model from a configuration |
| `checkpoints` | checkpoint files (tensors and plain values only) |
| `callbacks` | SB3 callbacks: metrics, held-out evaluation, checkpoints, progress, costs |
| `rollout` | one episode of a frozen policy in an `HPTuneEnv` (held-out scoring) |
| `run_log` | TensorBoard and ``progress.csv`` that survive a resume |
"""

from agents.metatrain.checkpoints import load_checkpoint
from agents.metatrain.config import MetaTrainConfig, resume_config
from agents.metatrain.loop import evaluate_policy, meta_train

__all__ = ["MetaTrainConfig", "evaluate_policy", "load_checkpoint", "meta_train", "resume_config"]
