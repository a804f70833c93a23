"""Meta-train the PPO agent across tasks (the product's main job; `make train`).

With no arguments it trains on the offline default suite (the synthetic task
family and scikit-learn digits; --train-tasks adds real datasets), writes
TensorBoard logs, checkpoints and the frozen policy under logs/, and prints
where they are. --ensemble K trains seeds --seed .. --seed + K - 1 one after
another (each a run of its own in OUT/s<seed>/) and writes their ensemble as
OUT/policy.pt; `make train` runs --ensemble 5 --total-steps 4800 (five members of
4,800 agent steps) with the deployment settings (README, "Two commands").

Examples:
    hpenv-train
    hpenv-train --ensemble 5 --total-steps 4800
    hpenv-train --train-tasks synthetic,digits --total-steps 20000
    hpenv-train --out-dir logs/meta-run --resume
    hpenv-train --out-dir logs/meta-run --resume --total-steps 16000
    hpenv-train --vec-env ray --ray-address HEAD:6379 --n-envs 32
    tensorboard --logdir logs

--resume takes the run's configuration from its directory: options given again
must match it (or are refused, naming the option and both values), and
--total-steps extends the run. Ctrl-C or SIGTERM stops at the next agent step
with a checkpoint (exit status 130); a second signal aborts at once.
--vec-env ray runs the environments as Ray actors on the cluster at
--ray-address (default: a Ray instance started here); see the README's
"On a Ray cluster".

From a clone without installing, ``python scripts/train_agent.py`` is the same command.
"""

from __future__ import annotations

import sys

from agents.cli import parse_config, run_job, use_threads
from agents.metatrain import MetaTrainConfig, meta_train, resume_config


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MetaTrainConfig, __doc__, argv, resume=resume_config)
    use_threads(config.threads)  # this process trains the population (workers: theirs)
    return run_job(lambda: meta_train(config))


if __name__ == "__main__":
    sys.exit(main())
