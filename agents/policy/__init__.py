"""The frozen policy: the artifact file, TorchScript/ONNX export, the shipped policies.

| module | what lives there |
|---|---|
| `artifact` | `FrozenPolicy` (save, load, check, predict), `PolicyActor` (one episode) |
| `export` | TorchScript and ONNX graphs with normalisation and clipping inside |
| `pretrained` | the shipped policy files and `load_default_policy` |
"""

from agents.policy.artifact import (
    FrozenPolicy,
    IncompatiblePolicyError,
    PolicyActor,
    PolicyLoadError,
    PolicyMetadata,
    load_policy,
)
from agents.policy.pretrained import DEFAULT_POLICY, load_default_policy

__all__ = [
    "DEFAULT_POLICY",
    "FrozenPolicy",
    "IncompatiblePolicyError",
    "PolicyActor",
    "PolicyLoadError",
    "PolicyMetadata",
    "load_default_policy",
    "load_policy",
]
