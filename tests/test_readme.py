"""The README's code blocks work as pasted.

Every ```python block runs, as it is, in a fresh interpreter (from an empty
working directory, so nothing lands in the checkout). Every command of the
```bash blocks is checked without running the long jobs: ``python
scripts/X.py ...`` must parse and validate with the script's own config
dataclass (``--help`` must print its help), ``make X`` must be a Makefile
target, ``pip install -e '.[extra]'`` must name declared extras, and the other
programs must be installed (the console scripts of ``[project.scripts]`` are
checked like their ``scripts/`` counterparts, installed or not). The README
also points at nothing outside the repository and lists every task and script.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib

from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(python|bash)\n(.*?)^```", README, flags=re.M | re.S)
PYTHON = [code for kind, code in BLOCKS if kind == "python"]
SHELL = [code for kind, code in BLOCKS if kind == "bash"]


def commands(block: str) -> list[list[str]]:
    """The block's commands as argv lists (continuations joined, comments and VAR= dropped)."""
    joined = block.replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        if words:
            result.append(words)
    return result


SHELL_COMMANDS = [argv for block in SHELL for argv in commands(block)]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONSOLE_SCRIPTS: dict[str, str] = PROJECT.get("scripts", {})


def test_the_readme_has_blocks_of_both_kinds():
    assert len(PYTHON) >= 5
    assert len(SHELL_COMMANDS) >= 10


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_block_runs_as_pasted(index: int, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PYTHON[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, f"README python block {index}:\n{result.stderr[-3000:]}"


class _Parsed(Exception):
    """Raised instead of running the job once the command line has been validated."""


def _validate_only(cls: type, doc: str | None, argv: list[str] | None, **_: Any) -> Any:
    from agents.cli import build_parser, from_args

    args = build_parser(cls, doc).parse_args(argv)  # unknown flags or bad types: SystemExit(2)
    if not getattr(args, "resume", False):
        from_args(cls, args)  # the values themselves (a resume reads its run's own)
    raise _Parsed


def _check_script(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _check_main(load_script(Path(argv[0]).stem).main, argv, monkeypatch)


def _check_console_script(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    module, function = CONSOLE_SCRIPTS[argv[0]].split(":")
    _check_main(getattr(importlib.import_module(module), function), argv, monkeypatch)


def _check_main(main: Any, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    command = sys.modules[main.__module__]  # a script may be a wrapper of agents.commands
    monkeypatch.setattr(command, "parse_config", _validate_only)
    try:
        main(argv[1:])
    except _Parsed:
        return
    except SystemExit as exit_:  # --help prints and exits 0
        code = exit_.code
    else:
        raise AssertionError(f"{shlex.join(argv)} did not parse its options first")
    assert code == 0, f"{shlex.join(argv)} exits {code}"


def _check_make(target: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"no make target {target}"


def _check_pip(argv: list[str]) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for word in argv[2:]:
        match = re.fullmatch(r"\.(?:\[([\w,]+)\])?", word.strip("'\""))
        if word.startswith("-") or match is None:  # flags, or the wheel (dist/...)
            continue
        for extra in filter(None, (match.group(1) or "").split(",")):
            assert extra in extras, f"pip install names an unknown extra {extra!r}"


@pytest.mark.parametrize("argv", SHELL_COMMANDS, ids=shlex.join)
def test_shell_command_is_valid(argv: list[str], monkeypatch: pytest.MonkeyPatch):
    program = argv[0]
    if program == "python" and argv[1].startswith("scripts/"):
        _check_script(argv[1:], monkeypatch)
    elif program in CONSOLE_SCRIPTS:  # installed by pip from [project.scripts]
        _check_console_script(argv, monkeypatch)
    elif program == "python" and argv[1:3] == ["-m", "pip"]:
        assert argv[3] in ("wheel", "install")
    elif program == "make":
        _check_make(argv[1] if len(argv) > 1 else "all")
    elif program == "pip":
        _check_pip(argv)
    elif program == "export":
        assert re.fullmatch(r"[A-Z_]+=.+", argv[1])
    else:
        bin_dir = Path(sys.executable).parent
        assert (bin_dir / program).exists() or shutil.which(program), f"{program} not installed"


def test_the_readme_points_at_nothing_outside_the_repository():
    assert not re.findall(r"(?<!\.)\.\./[\w./-]+", README)  # not logs/meta-.../x
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):  # relative links
        assert (ROOT / target).exists(), f"the README links {target}, which is not in the repo"
    assert "(docs/architecture.md)" in README


def test_the_task_tables_list_every_registered_task():
    from hpenv.tasks import list_tasks
    from hpenv.tasks.registry import HELDOUT_TASKS

    rows = set(re.findall(r"^\| `(\w+)` \|", README, flags=re.M))
    assert set(list_tasks()) <= rows, sorted(set(list_tasks()) - rows)
    assert set(HELDOUT_TASKS) <= rows


def test_the_layout_lists_every_script():
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [p.name for p in (ROOT / "scripts").glob("*.py") if p.name not in layout]
    assert not missing, f"the README's layout does not list {missing}"


def test_the_install_section_says_how_to_avoid_the_cuda_libraries():
    installing = README.split("### Installing", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\d(\.\d)? GB", installing), "say how large the CUDA build is"
    cpu = ["pip", "install", "torch", "torchvision", "--index-url"]
    assert any(argv[:5] == cpu and argv[5].endswith("/whl/cpu") for argv in SHELL_COMMANDS)
