"""Export a frozen policy artifact as TorchScript and/or ONNX.

The exported module maps a float32 batch of RAW observations (N, obs_dim) to
the policy's deterministic actions (N, k): observation normalisation, actor
network and action clipping (or per-hyperparameter argmax) in one graph; see
agents/policy/export.py. ONNX needs the ``export`` extra (pip install -e '.[export]').

Example:
    python scripts/export_policy.py --policy logs/meta-.../best_policy.pt \\
        --format both --out exported/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.policy import load_policy
from agents.policy.export import export_onnx, export_torchscript


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", required=True, help="frozen policy artifact (.pt)")
    parser.add_argument("--format", choices=("torchscript", "onnx", "both"), default="both")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.policy).stem
    try:
        if args.format in ("torchscript", "both"):
            print(export_torchscript(policy, out / f"{stem}.ts"))
        if args.format in ("onnx", "both"):
            print(export_onnx(policy, out / f"{stem}.onnx", opset=args.opset))
    except (NotImplementedError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
