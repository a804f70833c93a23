"""Meta-train the PPO agent across tasks (the product's main job; `make train`).

With no arguments it trains on the offline default suite (the synthetic task
family, scikit-learn digits, and the shared MNIST and IMDB samples when
HPENV_DATA_DIR points at them), writes TensorBoard logs, checkpoints and the
frozen policy under logs/, and prints where they are.

Examples:
    python scripts/train_agent.py
    python scripts/train_agent.py --train-tasks synthetic,digits --total-steps 20000
    python scripts/train_agent.py --out-dir logs/meta-run --resume
    python scripts/train_agent.py --out-dir logs/meta-run --resume --total-steps 16000
    tensorboard --logdir logs

--resume takes the run's configuration from its directory: options given again
must match it (or are refused, naming the option and both values), and
--total-steps extends the run. Ctrl-C or SIGTERM stops at the next agent step
with a checkpoint (exit status 130); a second signal aborts at once.
"""

from __future__ import annotations

import argparse
import sys

import torch

from agents.cli import add_arguments, from_args, given_options
from agents.metatrain import MetaTrainConfig, meta_train, resume_config
from agents.stopping import EXIT_INTERRUPTED, JobInterrupted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, MetaTrainConfig)
    args = parser.parse_args(argv)
    try:
        if args.resume:
            if args.out_dir is None:
                parser.error("--resume needs --out-dir: the run directory to continue")
            config = resume_config(args.out_dir, given_options(parser, argv))
        else:
            config = from_args(MetaTrainConfig, args)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)  # the environments' workers use the cores
    try:
        meta_train(config)
    except JobInterrupted as stopped:
        print(stopped, file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
