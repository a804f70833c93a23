"""Export a frozen policy as one self-contained TorchScript or ONNX module.

SB3's own export recipe exports the bare network: the caller still has to
normalise observations with ``VecNormalize``'s statistics and clip continuous
actions, and getting either wrong silently changes the policy. The module
exported here does the whole `FrozenPolicy.predict` (deterministic) in one
graph: raw observations in, the exact actions out. See `ExportedPolicy`.

Only feed-forward (MLP) policies are exported; recurrent (LSTM) policies raise
`NotImplementedError` (their state would have to become explicit inputs and
outputs of the graph).

Example::

    from agents.policy.export import export_onnx, export_torchscript
    from agents.policy.artifact import load_policy

    policy = load_policy("logs/run/best_policy.pt")
    export_torchscript(policy, "policy.ts")  # torch.jit.load("policy.ts")(obs)
    export_onnx(policy, "policy.onnx")  # onnxruntime.InferenceSession("policy.onnx")
"""

# No ``from __future__ import annotations``: TorchScript reads the class annotations.
import contextlib
import copy
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.policy.artifact import FrozenPolicy
from hpenv.errors import InputError

METADATA_FILE = "metadata.json"
"""Name of the metadata entry: a TorchScript extra file, an ONNX ``metadata_props`` key."""
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
EXPORT_FORMAT = 1
#: The oldest ONNX opset torch's exporter builds (``torch.onnx``'s ``TORCHLIB_OPSET``); an
#: older one is converted down with onnx's version converter (`onnx_model`).
NATIVE_OPSET = 18


class ExportedPolicy(nn.Module):
    """A frozen MLP policy as one module: raw observations to deterministic actions.

    Contract:

    - Input: ``obs``, float32, shape ``(N, obs_dim)`` with ``obs_dim =
      metadata.obs_size * metadata.frame_stack``: RAW (unnormalised)
      observations in the ``hpenv.observation`` layout version
      ``metadata.obs_version``; with frame stacking, the last ``frame_stack``
      observations oldest first, zeros before the first (as `PolicyActor`).
    - Normalisation (constants baked in, computed in float64 as
      ``VecNormalize`` does): ``clip((obs - mean) / sqrt(var + epsilon),
      -clip_obs, clip_obs)``, then cast to float32.
    - Continuous policies: the actor's Gaussian mean (``mlp_extractor.policy_net``
      then ``action_net``; ``tanh`` if the policy squashes its output) clamped to
      [-1, 1]: float32, shape ``(N, k)`` for ``k = len(metadata.tuned)``, in the
      order of ``metadata.tuned``. Each action means what it means to
      ``hpenv.hyperparams`` for the ranges in ``metadata.ranges``.
    - Discrete policies: the argmax of each group of 3 logits (0 = down,
      1 = keep, 2 = up; SB3 takes it of the softmax, which only differs on
      float ties): int64, shape ``(N, k)``, values in {0, 1, 2}.

    This equals ``FrozenPolicy.predict(obs, deterministic=True)[0]`` (up to
    float32 rounding of the network for continuous actions).
    """

    obs_mean: torch.Tensor
    obs_std: torch.Tensor

    def __init__(self, policy: FrozenPolicy) -> None:
        super().__init__()
        policy.single("export")
        if policy.recurrent:
            raise NotImplementedError(
                "export covers feed-forward (MLP) PPO policies only; this artifact is a "
                f"recurrent ({policy.metadata.algorithm}) policy whose LSTM state would have to "
                "become graph inputs and outputs. Use agents.policy.load_policy and "
                "FrozenPolicy.predict (with its state) instead, or train an MLP policy."
            )
        meta = policy.metadata
        sb3 = policy.policy
        if meta.action_mode not in ("continuous", "discrete"):
            raise ValueError(f"unknown action mode {meta.action_mode!r}")
        self.discrete = meta.action_mode == "discrete"
        self.squash = bool(getattr(sb3, "squash_output", False))
        self.num_actions = len(meta.tuned)
        obs_dim = meta.obs_size * meta.frame_stack
        if policy.obs_mean.shape != (obs_dim,) or policy.obs_var.shape != (obs_dim,):
            raise ValueError(
                f"normalisation statistics have shapes {policy.obs_mean.shape} / "
                f"{policy.obs_var.shape}, expected ({obs_dim},)"
            )
        mean = torch.as_tensor(policy.obs_mean, dtype=torch.float64)
        std = torch.sqrt(torch.as_tensor(policy.obs_var, dtype=torch.float64) + policy.epsilon)
        self.register_buffer("obs_mean", mean.clone())
        self.register_buffer("obs_std", std.clone())
        self.clip_obs = float(policy.clip_obs)
        self.obs_dim = obs_dim
        # Copies, so that the export never aliases (or changes) the live policy.
        self.features = copy.deepcopy(sb3.pi_features_extractor)
        self.policy_net = copy.deepcopy(sb3.mlp_extractor.policy_net)
        self.action_net = copy.deepcopy(sb3.action_net)
        _plain_constants(self)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scaled = (obs.to(torch.float64) - self.obs_mean) / self.obs_std
        normalised = torch.clamp(scaled, -self.clip_obs, self.clip_obs).to(torch.float32)
        out = self.action_net(self.policy_net(self.features(normalised)))
        if self.discrete:
            return torch.argmax(out.reshape(-1, self.num_actions, 3), dim=-1)
        if self.squash:
            out = torch.tanh(out)
        return torch.clamp(out, -1.0, 1.0)


def _plain_constants(module: nn.Module) -> None:
    """Turn NumPy scalars in module constants into Python ones, as TorchScript requires.

    SB3 sizes the MultiDiscrete ``action_net`` with ``sum(nvec)``, a ``numpy.int64``.
    """
    for sub in module.modules():
        for name in getattr(type(sub), "__constants__", ()):
            value = getattr(sub, name, None)
            if isinstance(value, np.generic):
                setattr(sub, name, value.item())


def export_metadata(policy: FrozenPolicy) -> dict[str, Any]:
    """What goes into the exported file: the artifact's metadata plus the I/O contract."""
    meta = policy.metadata
    return {
        "export_format": EXPORT_FORMAT,
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": ["N", meta.obs_size * meta.frame_stack],
            "raw_obs_version": meta.obs_version,
        },
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "int64" if meta.action_mode == "discrete" else "float32",
            "shape": ["N", len(meta.tuned)],
            "range": [0, 2] if meta.action_mode == "discrete" else [-1.0, 1.0],
        },
        "normalisation": {"clip_obs": policy.clip_obs, "epsilon": policy.epsilon},
        "policy": meta.to_dict(),
    }


def _metadata_json(policy: FrozenPolicy) -> str:
    return json.dumps(export_metadata(policy), sort_keys=True, default=str)


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch's "`torch.jit.*` is deprecated" FutureWarnings (TorchScript is asked for)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        yield


#: Loggers of the ONNX exporter that report its own internals (an opset converted down).
ONNX_LOGGERS = ("torch.onnx", "onnxscript")


@contextlib.contextmanager
def _quiet_onnx() -> Iterator[None]:
    """Keep the exporter's internal notices (opset 18 built, then converted to ``opset``) off
    the user's terminal: they are about how torch and onnxscript work, not about the policy.
    Errors still show."""
    loggers = [logging.getLogger(name) for name in ONNX_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _example(policy: FrozenPolicy) -> torch.Tensor:
    dim = policy.metadata.obs_size * policy.metadata.frame_stack
    return torch.zeros(2, dim, dtype=torch.float32)


def export_torchscript(policy: FrozenPolicy, path: str | Path) -> Path:
    """Write `ExportedPolicy` as TorchScript (``torch.jit.load``-able) to ``path``.

    The metadata (`export_metadata`) is stored as the extra file
    ``metadata.json`` (``torch.jit.load(path, _extra_files={"metadata.json": ""})``
    fills it in; `load_torchscript` returns module and metadata).
    """
    module = ExportedPolicy(policy)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    extra = {METADATA_FILE: _metadata_json(policy)}
    tmp = target.with_name(target.name + ".tmp")
    with _quiet_jit():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(tmp), _extra_files=extra)
    tmp.replace(target)
    return target


def onnx_model(policy: FrozenPolicy, opset: int = 17) -> Any:
    """`ExportedPolicy` as an in-memory ONNX ``ModelProto`` of exactly ``opset``.

    Input ``obs``, output ``action``; the metadata (`export_metadata`) is the
    ``metadata_props`` entry ``metadata.json``, plus ``obs_version``,
    ``action_mode`` and ``tuned`` as their own entries. torch's exporter builds
    opset `NATIVE_OPSET` or later; an older ``opset`` is converted down with
    onnx's version converter, and refused if the graph has no form there.
    Needs ``onnx`` and ``onnxscript`` (``pip install -e '.[export]'``).

    Raises:
        ImportError: ``onnx`` or ``onnxscript`` is not installed.
        NotImplementedError: A recurrent policy (see `ExportedPolicy`).
        InputError: ``opset`` is outside onnx's range, or the policy's graph cannot
            be written at it (the message names the lowest opset that works).
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs onnx and onnxscript ({exc}); "
            "install them with: pip install -e '.[export]'"
        ) from exc

    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise InputError(f"ONNX opset {opset} does not exist: onnx knows 1 to {newest}")
    module = ExportedPolicy(policy)
    batch = torch.export.Dim("batch")
    with _quiet_onnx():
        program = torch.onnx.export(
            module,
            (_example(policy),),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=max(opset, NATIVE_OPSET),  # below it torch warns and converts itself
            dynamic_shapes={"obs": {0: batch}},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    if program is None:  # pragma: no cover - only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    model = _at_opset(program.model_proto, opset)
    meta = policy.metadata
    props = {
        METADATA_FILE: _metadata_json(policy),
        "obs_version": str(meta.obs_version),
        "action_mode": meta.action_mode,
        "tuned": ",".join(meta.tuned),
    }
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (ExportedPolicy.__doc__ or "").strip()
    onnx.checker.check_model(model)
    return model


def _opset(model: Any) -> int:
    """The version of the default (``ai.onnx``) operator set a model imports."""
    return int({o.domain: o.version for o in model.opset_import}.get("", 0))


def _at_opset(model: Any, opset: int) -> Any:
    """``model`` converted to ``opset`` by onnx's version converter, or `InputError`."""
    from onnx.version_converter import convert_version

    def converted(version: int) -> Any:
        try:
            result = convert_version(model, version)
        except Exception:  # onnx's converter raises RuntimeError from its C++ asserts
            return None
        return result if _opset(result) == version else None

    result = model if _opset(model) == opset else converted(opset)
    if result is not None:
        return result
    works = next((v for v in range(opset + 1, _opset(model) + 1) if converted(v) is not None), None)
    hint = f"; use --opset {works} or later" if works is not None else ""
    raise InputError(
        f"this policy's graph cannot be written as ONNX opset {opset} (torch exports opset "
        f"{_opset(model)}; onnx's converter has no form of it at {opset}){hint}"
    )


def export_onnx(policy: FrozenPolicy, path: str | Path, opset: int = 17) -> Path:
    """Write `onnx_model` (exactly ``opset``) as one ONNX file to ``path``, atomically.

    Raises:
        The errors of `onnx_model`, before anything is written.
    """
    return save_onnx(onnx_model(policy, opset), path)


def save_onnx(model: Any, path: str | Path) -> Path:
    """Write an `onnx_model` to ``path`` atomically; returns the path."""
    import onnx

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    return target


def load_torchscript(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a TorchScript export: the module (call it on raw obs) and its metadata."""
    extra = {METADATA_FILE: ""}
    with _quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, dict(json.loads(extra[METADATA_FILE]))


def load_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata stored in an ONNX export."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return dict(json.loads(props[METADATA_FILE]))
