"""Export a frozen policy artifact as TorchScript and/or ONNX.

The exported module maps a float32 batch of RAW observations (N, obs_dim) to
the policy's deterministic actions (N, k): observation normalisation, actor
network and action clipping (or per-hyperparameter argmax) in one graph; see
agents/policy/export.py. ONNX needs the ``export`` extra (pip install -e '.[export]').
--policy defaults to the shipped policy.

A policy's deployment settings (the default ``hpenv-lr-v2.1``'s rise guard, restart and
fall hold: ``metadata["policy"]["deploy"]``) are what its drivers do around the policy, not
part of the graph: the export records them in its metadata, and says so on stderr, so a
runtime that drives jobs with the exported module can apply them as `HyperController` does.

Example:
    hpenv-export --out exported/
    hpenv-export --policy logs/meta-.../best_policy.pt --format onnx \\
        --out exported/

From a clone without installing, ``python scripts/export_policy.py`` is the same command.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agents.cli import option, parse_config, run_job
from agents.policy import DEFAULT_POLICY_NAME, load_pretrained
from agents.policy.export import export_torchscript, onnx_model, save_onnx


@dataclass(frozen=True)
class ExportConfig:
    """What to export where (every field is a flag)."""

    out: str = option("output directory (created if missing)", default="exported")
    policy: str = option(
        "policy: artifact file, hub-layout folder, shipped name or Hub repo id",
        default=DEFAULT_POLICY_NAME,
    )
    format: Literal["torchscript", "onnx", "both"] = option("what to write", default="both")
    opset: int = option(
        "ONNX opset of the file written (exactly this one, or an error)", default=17
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ExportConfig, __doc__, argv)
    return run_job(lambda: export(config), input_errors=(NotImplementedError, ImportError))


def export(config: ExportConfig) -> None:
    """Write the asked formats; anything refused (policy, opset, missing extra) writes nothing."""
    policy = load_pretrained(config.policy)
    out = Path(config.out)
    stem = Path(config.policy).stem if config.policy.endswith(".pt") else "policy"
    # The ONNX model is built (and its opset checked) before any file is written.
    model = onnx_model(policy, config.opset) if config.format in ("onnx", "both") else None
    if config.format in ("torchscript", "both"):
        print(export_torchscript(policy, out / f"{stem}.ts"))
    if model is not None:
        print(save_onnx(model, out / f"{stem}.onnx"))
    # a setting turned off is stored as None (or False for the rise guard): not named
    deployed = sorted(
        k for k, v in policy.metadata.deploy.items() if v is not None and v is not False
    )
    if deployed:
        print(
            f"note: the policy is deployed with {', '.join(deployed)}: driver behaviour "
            "recorded in the export's metadata (policy.deploy), not part of its graph",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
