"""Policies shared the way the ecosystem shares models: names, folders, Hugging Face Hub repos.

`load_pretrained` (and every ``--policy`` flag, `HyperController.from_pretrained`
and the framework callbacks) accepts, tried in this order:

1. a local artifact file (``best_policy.pt``);
2. a local folder in the hub layout (below);
3. the name of a shipped policy (``hpenv-lr-v2.1``, ``hpenv-lr-v2``; `DEFAULT_POLICY_NAME` is
   the default);
4. a Hugging Face Hub repo id (``owner/name``, optionally ``owner/name@revision``),
   downloaded with ``huggingface_hub.hf_hub_download`` into its usual cache.

Hub layout (what `save_pretrained` writes and `push_to_hub` uploads)::

    <folder>/
      policy.pt     the artifact (`agents.policy.artifact`: tensors and plain values only)
      README.md     model card: the metadata, how it was trained, held-out results
      hpenv.json    the artifact's metadata as JSON (readable without torch)

Offline (``HF_HUB_OFFLINE=1``, or no connection), a repo id that is not in the
local cache fails at once with `PolicyNotFoundError`, saying what was tried.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from agents.policy.artifact import FrozenPolicy, load_policy
from hpenv.io import atomic_open, atomic_write_json
from hpenv.network import hub_offline

#: File names of the hub layout.
POLICY_FILE = "policy.pt"
CARD_FILE = "README.md"
METADATA_FILE = "hpenv.json"
PRETRAINED_DIR = Path(__file__).with_name("pretrained")
#: The shipped policy used when none is named: ``hpenv-lr-v2``'s weights deployed with the
#: rise guard, ``--restart collapse`` and the fall hold (`agents.policy.pretrained`).
DEFAULT_POLICY_NAME = "hpenv-lr-v2.1"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")


class PolicyNotFoundError(FileNotFoundError):
    """No policy could be found under that name; the message (one line) lists every place tried."""


def shipped_policies() -> list[str]:
    """Names of the policies shipped in ``agents/policy/pretrained/``."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def resolve_policy_file(name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """The local artifact file a name, path or repo id refers to (downloading if needed).

    Args:
        name_or_path: See the module docstring; None is `DEFAULT_POLICY_NAME`.

    Raises:
        PolicyNotFoundError: Nothing matched; the message says what was tried.
    """
    name = os.fspath(name_or_path) if name_or_path is not None else DEFAULT_POLICY_NAME
    tried: list[str] = []
    path = Path(name).expanduser()
    if path.is_file():
        return path
    tried.append(f"a file {path}")
    if path.is_dir():
        if (path / POLICY_FILE).is_file():
            return path / POLICY_FILE
        tried.append(f"{path / POLICY_FILE} (the folder has no {POLICY_FILE})")
    shipped = PRETRAINED_DIR / f"{name.removesuffix('.pt')}.pt"
    if shipped.is_file():
        return shipped
    tried.append(f"a shipped policy (known: {', '.join(shipped_policies())})")
    if _REPO_ID.match(name) and not path.exists():
        return _download(name, tried)
    tried.append("a Hugging Face Hub repo id (the name is not of the form owner/name)")
    raise PolicyNotFoundError(_not_found(name, tried))


def load_pretrained(name_or_path: str | os.PathLike[str] | None = None) -> FrozenPolicy:
    """Load a policy by file, folder, shipped name or Hub repo id (see the module docstring)."""
    return load_policy(resolve_policy_file(name_or_path))


def _download(repo: str, tried: list[str]) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id, _, revision = repo.partition("@")
    offline = hub_offline()  # one quick probe instead of the client's ~25 s of retries
    try:
        return Path(
            hf_hub_download(
                repo_id,
                POLICY_FILE,
                revision=revision or None,
                local_files_only=offline is not None,
                etag_timeout=5,
            )
        )
    except LocalEntryNotFoundError:
        why = offline or "the Hub could not be reached"
        tried.append(f"Hugging Face Hub repo {repo_id!r}: not in the local cache, and {why}")
    except (HfHubHTTPError, OSError, ValueError) as exc:
        tried.append(f"Hugging Face Hub repo {repo_id!r}: {type(exc).__name__}: {exc}")
    raise PolicyNotFoundError(_not_found(repo, tried))


def _not_found(name: str, tried: list[str]) -> str:
    return (
        f"no policy {name!r}; tried: {'; '.join(tried)}. Give an artifact file, a folder "
        "holding policy.pt, a shipped name, or a Hub repo id (owner/name) with network access."
    )


# --------------------------------------------------------------------- sharing


def model_card(policy: FrozenPolicy, command: str = "", results: str = "") -> str:
    """A Hugging Face model card (README.md) for ``policy``."""
    meta = policy.metadata
    front = [
        "---",
        "library_name: hpenv",
        "tags:",
        "- hyperparameter-tuning",
        "- reinforcement-learning",
        "- stable-baselines3",
        "license: mit",
        "---",
    ]
    rows = [
        ("tunes", ", ".join(meta.tuned)),
        ("action mode", meta.action_mode),
        ("algorithm", meta.algorithm),
        ("observation layout", f"v{meta.obs_version} ({meta.obs_size} features)"),
        ("trained on", ", ".join(meta.tasks) or "(not recorded)"),
        ("agent steps", str(meta.agent_steps)),
        *(
            [("ensemble", f"the mean action of {meta.ensemble['size']} policies")]
            if meta.ensemble
            else []
        ),
        ("decisions per run", str(meta.env_config.get("decisions", "?"))),
        ("created", meta.created),
        ("versions", ", ".join(f"{k} {v}" for k, v in sorted(meta.versions.items()))),
    ]
    if meta.parent:
        run = meta.adaptation
        rows += [
            ("adapted from", f"{meta.parent.get('source', '?')} ({meta.parent.get('file', '')})"),
            (
                "adaptation",
                f"{run.get('episodes', '?')} episodes of {run.get('task', '?')}, "
                f"{run.get('agent_steps', '?')} agent steps, "
                f"{run.get('training_samples', '?')} training samples, "
                f"{run.get('seconds', '?')} s",
            ),
        ]
    body = [
        "# hpenv hyperparameter policy",
        "",
        "A frozen PPO policy that adjusts the hyperparameters of a training run while it "
        "trains. Load it with `agents.policy.load_pretrained(<this repo id>)` or "
        "`HyperController.from_pretrained(<this repo id>, optimizer, total_steps=...)`.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        "## Training command",
        "",
        f"```bash\n{command}\n```" if command else "(not recorded)",
        "",
        "## Held-out results",
        "",
        results or "(not recorded)",
        "",
    ]
    if meta.notes:
        body += ["## Notes", "", meta.notes, ""]
    return "\n".join([*front, "", *body])


def save_pretrained(
    policy: FrozenPolicy, folder: str | os.PathLike[str], command: str = "", results: str = ""
) -> Path:
    """Write ``policy`` in the hub layout (atomically, file by file); returns the folder."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    policy.save(target / POLICY_FILE)
    with atomic_open(target / CARD_FILE, "w") as fh:
        fh.write(model_card(policy, command, results))
    atomic_write_json(policy.metadata.to_dict(), target / METADATA_FILE)
    return target


def push_to_hub(
    policy: FrozenPolicy | str | os.PathLike[str],
    repo_id: str,
    *,
    command: str = "",
    results: str = "",
    private: bool = False,
    token: str | None = None,
) -> Any:
    """Upload a policy (loaded, or a file / folder) to a Hugging Face Hub model repo.

    Needs network access and a token with write access (``huggingface-cli login``
    or ``token=``). Returns the commit info of ``HfApi.upload_folder``.
    """
    import tempfile

    from huggingface_hub import HfApi

    loaded = policy if isinstance(policy, FrozenPolicy) else load_pretrained(policy)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(loaded, folder, command, results)
        return api.upload_folder(repo_id=repo_id, folder_path=folder)


def read_card_metadata(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``hpenv.json`` of a folder in the hub layout."""
    data: dict[str, Any] = json.loads((Path(folder) / METADATA_FILE).read_text())
    return data
