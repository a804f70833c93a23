"""Meta-train the PPO agent across tasks (the product's main job; `make train`).

With no arguments it trains on the offline default suite (the synthetic task
family, scikit-learn digits, and the shared MNIST and IMDB samples when
HPENV_DATA_DIR points at them), writes TensorBoard logs, checkpoints and the
frozen policy under logs/, and prints where they are.

Examples:
    python scripts/train_agent.py
    python scripts/train_agent.py --train-tasks synthetic,digits --total-steps 20000
    python scripts/train_agent.py --out-dir logs/meta-run --resume
    tensorboard --logdir logs
"""

from __future__ import annotations

import argparse
import sys

import torch

from agents.cli import add_arguments, from_args
from agents.train import MetaTrainConfig, meta_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, MetaTrainConfig)
    args = parser.parse_args(argv)
    try:
        config = from_args(MetaTrainConfig, args)
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)  # the environments' workers use the cores
    try:
        meta_train(config)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
