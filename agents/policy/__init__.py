"""The frozen policy: the artifact file, TorchScript/ONNX export, the shipped policies.

| module | what lives there |
|---|---|
| `artifact` | `FrozenPolicy` (save, load, check, predict, ensembles), `PolicyActor` (one episode) |
| `export` | TorchScript and ONNX graphs with normalisation and clipping inside |
| `step` | `PolicyStep`: metrics -> features -> action -> hyperparameters (one place) |
| `hub` | policies by file, folder, shipped name or Hugging Face Hub repo; sharing them |
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
from agents.policy.hub import (
    DEFAULT_POLICY_NAME,
    PolicyNotFoundError,
    load_pretrained,
    push_to_hub,
    save_pretrained,
)
from agents.policy.pretrained import DEFAULT_POLICY, load_default_policy

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_NAME",
    "FrozenPolicy",
    "IncompatiblePolicyError",
    "PolicyActor",
    "PolicyLoadError",
    "PolicyMetadata",
    "PolicyNotFoundError",
    "load_default_policy",
    "load_policy",
    "load_pretrained",
    "push_to_hub",
    "save_pretrained",
]
