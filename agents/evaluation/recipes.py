"""A whole recipe comparison from one resumable command: meta-train, evaluate, tabulate.

A recipes file names sets of ``scripts/train_agent.py`` flags (TOML or JSON)::

    reference = "make-train"          # optional: the recipe the others are tested against

    [recipes.make-train]
    flags = []                        # train_agent.py's defaults (`make train`)

    [recipes.population]
    flags = ["--vec-env", "population", "--n-envs", "64", "--n-steps", "4"]

`compare_recipes` then, in ``out_dir``:

1. keeps a copy of the file (``recipes.toml`` / ``recipes.json``) and the
   comparison's options (``comparison.json``); running the same command again
   continues the comparison, and a changed recipes file or option is refused;
2. evaluates the baselines once, shared by all recipes (``eval/baselines``;
   or takes them from an earlier comparison's or evaluation's folder,
   ``--baselines-from``, which must hold the same cells);
3. for each meta-training seed, for each recipe: meta-trains
   (``meta/<recipe>/s<seed>``, `agents.metatrain.meta_train`, resumed from its
   checkpoint when it was stopped) and evaluates its policy on the held-out
   suite (``eval/<recipe>/s<seed>``, `agents.evaluation.evaluate`, resumed too);
4. writes the ablation table (``ablation.md``, `ablation_markdown`; its figures in
   ``ablation.json``) after
   every evaluation, so a comparison that spans sessions always has its table
   so far.

Finished meta-training runs and evaluation cells are never redone. A progress
bar counts the jobs and estimates the time left from the jobs measured so far
(kept in ``comparison.json``, so the estimate survives a stop). SIGINT or
SIGTERM stops the job in progress at its next safe point (its own checkpoint);
`JobInterrupted` says to run the same command again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import torch
from tqdm import tqdm

from agents.cli import (
    build_parser,
    check_threads,
    from_args,
    option,
    threads_option,
    use_threads,
)
from agents.evaluation.ablation import ablation_report, summary_json
from agents.evaluation.config import DEFAULT_TASKS, EngineName, EvalConfig, fidelity_text
from agents.evaluation.records import RunStore
from agents.stopping import GracefulStop, JobInterrupted
from hpenv.hyperparams import OptimizerName
from hpenv.io import atomic_open, atomic_write_json

#: Flags a recipe may not set: the comparison sets them for every run.
MANAGED_FLAGS = ("--seed", "--out-dir", "--resume")
#: What a recipe name may contain (it names folders).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Which policy of a meta-training run is evaluated.
PolicyChoice = Literal["best", "final"]


@dataclass(frozen=True)
class Recipe:
    """One recipe: a name and its ``train_agent.py`` flags."""

    name: str
    flags: tuple[str, ...]


def read_recipes(path: str | Path) -> tuple[list[Recipe], str | None]:
    """The recipes of a TOML or JSON file, and its ``reference`` (None if it names none).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not TOML/JSON of the documented shape, a bad recipe name,
            flags that are not strings, a managed flag (`MANAGED_FLAGS`), or
            flags ``train_agent.py`` refuses (named with the recipe).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipes file {path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib  # Python 3.11+ (a JSON file works on 3.10)

            data = tomllib.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"recipes file {path}: not valid {kind}: {exc}") from None
    table = data.get("recipes") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(
            f"recipes file {path}: expected a [recipes.NAME] table with flags = [...] per recipe"
        )
    recipes = []
    for name, entry in table.items():
        flags = entry.get("flags") if isinstance(entry, dict) else None
        if not NAME.match(str(name)):
            raise ValueError(f"recipe name {name!r}: use letters, digits, '.', '_' and '-'")
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError(f"recipe {name!r}: flags must be a list of strings")
        managed = [f for f in flags if f.split("=", 1)[0] in MANAGED_FLAGS]
        if managed:
            raise ValueError(f"recipe {name!r}: {managed} are set by the comparison; drop them")
        recipe = Recipe(str(name), tuple(flags))
        recipe_config(recipe, seed=0, out_dir="unused")  # train_agent.py's own checks
        recipes.append(recipe)
    reference = data.get("reference")
    if reference is not None and reference not in table:
        raise ValueError(f"recipes file {path}: reference {reference!r} is not a recipe")
    return recipes, reference


def recipe_config(recipe: Recipe, seed: int, out_dir: str, **extra: Any) -> Any:
    """The `MetaTrainConfig` of ``recipe`` for one meta-training seed.

    Raises:
        ValueError: The flags are refused, naming the recipe.
    """
    from agents.metatrain import MetaTrainConfig

    parser = build_parser(MetaTrainConfig, None)

    def refuse(message: str) -> NoReturn:
        raise ValueError(message)

    parser.error = refuse  # type: ignore[method-assign]  # a ValueError, not an exit
    try:
        args = parser.parse_args([*recipe.flags, "--seed", str(seed), "--out-dir", out_dir])
        config = from_args(MetaTrainConfig, args)
    except ValueError as exc:  # argparse's complaint, or MetaTrainConfig's checks
        raise ValueError(f"recipe {recipe.name!r}: {exc}") from None
    return dataclasses.replace(config, **extra) if extra else config


@dataclass(frozen=True)
class ComparisonConfig:
    """A recipe comparison (every field is a CLI flag of ``scripts/compare_recipes.py``)."""

    recipes_file: str | None = option(
        "TOML or JSON file naming the recipes (sets of train_agent.py flags)", default=None
    )
    out_dir: str | None = option("the comparison's folder (run again to continue)", default=None)
    meta_seeds: tuple[int, ...] = option(
        "meta-training seeds of every recipe", default=(0, 1, 2, 3, 4)
    )
    eval_seeds: tuple[int, ...] = option(
        "evaluation seeds of every held-out cell", default=(0, 1, 2, 3, 4)
    )
    tasks: tuple[str, ...] = option("held-out tasks", default=DEFAULT_TASKS)
    baselines: tuple[str, ...] = option(
        "baseline methods, evaluated once for all recipes",
        default=("static", "cosine", "prodigy", "schedulefree", "grid"),
    )
    baselines_from: str | None = option(
        "take the baselines' runs from this report folder of an earlier comparison "
        "(<its out-dir>/eval/baselines) or evaluation instead of running them; it must have "
        "run every baseline on these tasks, seeds and fidelities",
        default=None,
    )
    recipes: tuple[str, ...] = option(
        "only these recipes of the file (default: all of them); e.g. the rescue table of "
        "two recipes of a --meta-from comparison",
        default=(),
    )
    reference: str | None = option(
        "the recipe every other one is tested against (default: the file's 'reference', "
        "else its first recipe)",
        default=None,
    )
    policy: PolicyChoice = option(
        "which policy of a run is evaluated: 'best' (selected on its held-out synthetic tasks, "
        "the final one when there was no selection) or 'final'",
        default="best",
    )
    fidelity: tuple[str, ...] = option(
        "per-task run size overrides TASK:SUBSET:EPOCHS of the evaluation", default=()
    )
    start_lr_factors: tuple[float, ...] = option(
        "the held-out cells' starting rates, x the task default (e.g. 0.01,30: the rescue "
        "table), for the baselines and every policy",
        default=(1.0,),
    )
    optimizer: OptimizerName | None = option(
        "the user's optimizer in every held-out cell (e.g. sgd: the SGD table; default: "
        "each task's)",
        default=None,
    )
    test_from_val: bool = option(
        "held-out tasks without a test split lend half of their validation split to one "
        "(evaluate.py --test-from-val) and the table scores test accuracy; with --dirs, the "
        "folders must have been evaluated so",
        default=False,
    )
    meta_from: str | None = option(
        "evaluate the policies another comparison (its --out-dir, run with this recipes "
        "file) meta-trained, instead of meta-training: e.g. the rescue or SGD cells of the "
        "same policies; seeds it has not finished yet are left for a later run",
        default=None,
    )
    decisions: int | None = option(
        "decision points per evaluation run (default: the policy's)", default=None
    )
    engine: EngineName = option("how evaluation cells train (see evaluate.py)", default="auto")
    threads: int = threads_option()
    data_dir: str | None = option("local data directory (default HPENV_DATA_DIR)", default=None)
    dirs: tuple[str, ...] = option(
        "table only, no runs: NAME=DIR+DIR+... names existing harness folders of a recipe's "
        "meta-training seeds (comma-separate recipes or repeat the flag)",
        default=(),
    )
    json_out: str | None = option(
        "also write the table's figures (each run's mean, per-task means, the test against "
        "the reference; `agents.evaluation.ablation.ablation_summary`) as JSON to this file, "
        "for scripts that read the numbers (a comparison keeps them in <out-dir>/ablation.json "
        "too)",
        default=None,
    )

    def __post_init__(self) -> None:
        check_threads(self.threads)
        if self.dirs:
            if self.recipes_file is not None:
                raise ValueError("give --recipes-file (run a comparison) or --dirs (table only)")
            if any("=" not in d for d in self.dirs):
                raise ValueError(f"--dirs must be NAME=DIR+DIR+..., got {self.dirs}")
            return
        if self.recipes_file is None or self.out_dir is None:
            raise ValueError(
                "give --recipes-file FILE --out-dir DIR (or --dirs NAME=DIR+... for a table of "
                "existing harness folders)"
            )
        for name in ("meta_seeds", "eval_seeds", "tasks", "start_lr_factors", "recipes"):
            values = getattr(self, name)
            if (not values and name != "recipes") or len(set(values)) != len(values):
                raise ValueError(f"{name} must list distinct values, got {values}")

    @property
    def score(self) -> str:
        """What the table scores (`agents.evaluation.ablation.SCORES`): test accuracy with
        ``test_from_val``, else validation accuracy."""
        return "test" if self.test_from_val else "val"

    def directories(self) -> dict[str, list[Path]]:
        """``--dirs``: recipe name -> its harness directories."""
        pairs = (item.split("=", 1) for item in self.dirs)
        return {name: [Path(d) for d in dirs.split("+")] for name, dirs in pairs}

    def options(self) -> dict[str, Any]:
        """What must not change when the comparison continues (everything but placement)."""
        values = dataclasses.asdict(self)
        for placement in (
            "recipes_file", "out_dir", "data_dir", "engine", "threads", "dirs", "baselines_from",
            "json_out",
        ):  # fmt: skip
            values.pop(placement)
        return json.loads(json.dumps(values))


def check_dirs(config: ComparisonConfig) -> None:
    """``--dirs`` must name report directories of ``scripts/evaluate.py``.

    Raises:
        FileNotFoundError: A directory holds no ``results.csv``.
    """
    for name, dirs in config.directories().items():
        for folder in dirs:
            if not (folder / "results.csv").is_file():
                raise FileNotFoundError(
                    f"recipe {name}: {folder} holds no results.csv; give report directories "
                    "of scripts/evaluate.py"
                )


@dataclass
class _Job:
    kind: Literal["baselines", "meta", "eval"]
    recipe: str = ""
    seed: int = 0

    @property
    def label(self) -> str:
        return (
            "baselines" if self.kind == "baselines" else f"{self.kind} {self.recipe} s{self.seed}"
        )

    @property
    def clock(self) -> str:
        """The key its measured durations are kept under (estimates the ones to come)."""
        return self.kind if self.kind != "meta" else f"meta:{self.recipe}"


class Comparison:
    """A recipe comparison in its folder (see the module docstring)."""

    def __init__(self, config: ComparisonConfig, argv: Sequence[str] | None = None) -> None:
        assert config.recipes_file is not None
        assert config.out_dir is not None
        self.config = config
        self.recipes, file_reference = read_recipes(config.recipes_file)
        names = [r.name for r in self.recipes]
        unknown = [name for name in config.recipes if name not in names]
        if unknown:
            raise ValueError(f"--recipes {unknown}: not recipes of {config.recipes_file} {names}")
        if config.recipes:
            self.recipes = [r for r in self.recipes if r.name in config.recipes]
            names = [r.name for r in self.recipes]
        if file_reference not in names:  # None, or left out by --recipes
            file_reference = None
        self.reference = config.reference or file_reference or names[0]
        if self.reference not in names:
            raise ValueError(f"--reference {self.reference!r} is not a recipe ({names})")
        self.out = Path(config.out_dir)
        if config.baselines_from is not None:
            self._check_shared_baselines(Path(config.baselines_from))
        self.command = " ".join(argv) if argv else "the same command"
        self.state = self._open()

    # ------------------------------------------------------------------ folder

    def _open(self) -> dict[str, Any]:
        """Create or continue the folder; refuse a changed recipes file or option."""
        source = Path(self.config.recipes_file or "")
        kept = self.out / f"recipes{source.suffix or '.toml'}"
        state_path = self.out / "comparison.json"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if state_path.is_file():
            state = json.loads(state_path.read_text())
            if state.get("recipes_sha256") != digest:
                raise ValueError(
                    f"{source} differs from the recipes this comparison ran ({kept}): a "
                    "comparison's recipes cannot change; use another --out-dir, or put the "
                    "kept file back"
                )
            # An option added since the comparison began counts as its default there.
            saved = {**_default_options(), **state["options"]}
            changed = [
                f"--{k.replace('_', '-')}: the comparison has {saved.get(k)!r}, "
                f"this command gives {v!r}"
                for k, v in self.config.options().items()
                if saved.get(k) != v
            ]
            if changed:
                raise ValueError("cannot continue with changed options: " + "; ".join(changed))
            self._check_meta_from(digest)
            return dict(state)
        if (self.out / "meta").exists() or (self.out / "eval").exists():
            raise ValueError(f"{self.out} holds runs but no comparison.json: use another --out-dir")
        self._check_meta_from(digest)
        self.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kept)
        state = {"recipes_sha256": digest, "options": self.config.options(), "durations": {}}
        atomic_write_json(state, state_path)
        return state

    def _check_meta_from(self, digest: str) -> None:
        """``--meta-from`` must be a comparison of this very recipes file."""
        if self.config.meta_from is None:
            return
        other = Path(self.config.meta_from) / "comparison.json"
        if not other.is_file():
            raise FileNotFoundError(f"--meta-from {self.config.meta_from}: no comparison there")
        if json.loads(other.read_text()).get("recipes_sha256") != digest:
            raise ValueError(
                f"--meta-from {self.config.meta_from} ran other recipes than "
                f"{self.config.recipes_file}: give the recipes file it ran"
            )

    def _check_shared_baselines(self, folder: Path) -> None:
        """``--baselines-from`` must hold every baseline cell of this comparison, finished.

        Raises:
            FileNotFoundError: No evaluation there.
            ValueError: Cells missing, or run at other fidelities or decisions.
        """
        if not (folder / "config.json").is_file() or not (folder / "results.csv").is_file():
            raise FileNotFoundError(f"--baselines-from {folder}: no evaluation there")
        saved = json.loads((folder / "config.json").read_text())
        mine = EvalConfig(tasks=self.config.tasks, fidelity=self.config.fidelity)
        fidelities = {t: fidelity_text(t, mine.fidelity_overrides()) for t in self.config.tasks}
        theirs = saved.get("fidelity", {})
        other = [t for t, text in fidelities.items() if theirs.get(t) != text]
        if other:
            raise ValueError(f"--baselines-from {folder} ran {other} at other fidelities")
        if self.config.decisions is not None and saved.get("decisions") != self.config.decisions:
            raise ValueError(
                f"--baselines-from {folder} ran {saved.get('decisions')} decisions, not "
                f"{self.config.decisions}"
            )
        finished = RunStore(folder).finished()
        missing = [
            (m, t, s)
            for m in self.config.baselines
            for t in self.config.tasks
            for s in self.config.eval_seeds
            for f in self.config.start_lr_factors
            if (m, t, s, f) not in finished
        ]
        for name in ("optimizer", "test_from_val"):
            ran_with = saved.get("config", {}).get(name, getattr(mine, name))  # older: default
            if ran_with != getattr(self.config, name):
                raise ValueError(
                    f"--baselines-from {folder} ran {name}={ran_with}, not "
                    f"{getattr(self.config, name)}"
                )
        if missing:
            raise ValueError(
                f"--baselines-from {folder} lacks {len(missing)} finished baseline cells, e.g. "
                f"{missing[:3]}: run them there first, or leave --baselines-from out"
            )

    def _save(self) -> None:
        atomic_write_json(self.state, self.out / "comparison.json")

    # -------------------------------------------------------------------- jobs

    def jobs(self) -> list[_Job]:
        """Every job in run order: the baselines, then per meta-seed each recipe's two."""
        own = self.config.baselines and self.config.baselines_from is None
        jobs = [_Job("baselines")] if own else []
        for seed in self.config.meta_seeds:
            for recipe in self.recipes:
                if self.config.meta_from is None:
                    jobs.append(_Job("meta", recipe.name, seed))
                jobs.append(_Job("eval", recipe.name, seed))
        return jobs

    def run_dir(self, job: _Job) -> Path:
        if job.kind == "baselines":
            shared = self.config.baselines_from
            return Path(shared) if shared is not None else self.out / "eval" / "baselines"
        if job.kind == "meta" and self.config.meta_from is not None:
            return Path(self.config.meta_from) / "meta" / job.recipe / f"s{job.seed}"
        return self.out / job.kind / job.recipe / f"s{job.seed}"

    def done(self, job: _Job) -> bool:
        folder = self.run_dir(job)
        if job.kind == "meta":
            return (folder / "policy.pt").is_file()
        if not (folder / "results.csv").is_file():
            return False
        methods = ("policy",) if job.kind == "eval" else self.config.baselines
        cells = len(self.config.tasks) * len(self.config.eval_seeds)
        expected = len(methods) * cells * len(self.config.start_lr_factors)
        return len(RunStore(folder).finished()) >= expected

    def run(self, job: _Job) -> None:
        """Run (or continue) one job."""
        if job.kind == "meta":
            self._meta_train(job)
        else:
            self._evaluate(job)

    def _meta_train(self, job: _Job) -> None:
        from agents.metatrain import meta_train
        from agents.metatrain.loop import run_started

        recipe = next(r for r in self.recipes if r.name == job.recipe)
        folder = self.run_dir(job)
        resume = run_started(folder)
        if folder.exists() and not resume:
            shutil.rmtree(folder)  # stopped before its first checkpoint: nothing to continue
        config = recipe_config(recipe, job.seed, str(folder), resume=resume)
        threads = torch.get_num_threads()
        use_threads(config.threads)  # a population trains in this process: the recipe's threads
        try:
            meta_train(config)
        finally:
            torch.set_num_threads(threads)

    def _evaluate(self, job: _Job) -> None:
        from agents.evaluation.runner import evaluate

        folder = self.run_dir(job)
        config = self.config
        common: dict[str, Any] = {
            "tasks": config.tasks,
            "seeds": config.eval_seeds,
            "fidelity": config.fidelity,
            "decisions": config.decisions,
            "start_lr_factors": config.start_lr_factors,
            "optimizer": config.optimizer,
            "test_from_val": config.test_from_val,
            "engine": config.engine,
            "data_dir": config.data_dir,
            "out_dir": str(folder),
            "resume": folder.exists(),
        }
        if job.kind == "baselines":
            evaluate(EvalConfig(methods=config.baselines, **common), progress=False)
        else:
            evaluate(EvalConfig(methods=("policy",), policy=self.policy(job), **common),
                     progress=False)  # fmt: skip
        self.write_table()

    def policy(self, job: _Job) -> str:
        """The policy file of a meta-training seed that its evaluation uses."""
        folder = self.run_dir(_Job("meta", job.recipe, job.seed))
        best = folder / "best_policy.pt"
        return str(
            best if self.config.policy == "best" and best.is_file() else folder / "policy.pt"
        )

    # ------------------------------------------------------------------- table

    def write_table(self) -> Path | None:
        """``ablation.md`` from every finished evaluation so far, and its figures in
        ``ablation.json`` (`ablation_summary`) beside it (None before there is one)."""
        dirs = {
            recipe.name: [
                self.run_dir(_Job("eval", recipe.name, s))
                for s in self.config.meta_seeds
                if self.done(_Job("eval", recipe.name, s))
            ]
            for recipe in self.recipes
        }
        dirs = {name: found for name, found in dirs.items() if found}
        if not dirs:
            return None
        baselines = self.run_dir(_Job("baselines"))
        reference = self.reference if self.reference in dirs else None
        text, summary = ablation_report(
            dirs,
            self.config.baselines,
            baseline_dir=baselines if (baselines / "results.csv").is_file() else None,
            reference_recipe=reference,
            score=self.config.score,
        )
        seeds = {name: len(found) for name, found in dirs.items()}
        header = (
            f"# Recipe comparison: {self.out}\n\nRecipes: `{self.out / 'recipes'}*`; "
            f"meta-training seeds finished per recipe: {seeds}; reference: `{self.reference}`."
            f"\n\nWritten {time.strftime('%Y-%m-%d %H:%M:%S')} by: `{self.command}`\n\n"
        )
        path = self.out / "ablation.md"
        with atomic_open(path, "w") as fh:
            fh.write(header + text + "\n")
        with atomic_open(self.out / "ablation.json", "w") as fh:
            fh.write(summary_json(summary))
        return path

    # ------------------------------------------------------------------ driver

    def estimate(self, jobs: Sequence[_Job]) -> float:
        """Seconds the ``jobs`` will take, from the durations measured so far (NaN: unknown)."""
        durations: dict[str, list[float]] = self.state["durations"]
        meta = [d for key, values in durations.items() if key.startswith("meta") for d in values]
        total = 0.0
        for job in jobs:
            seen = durations.get(job.clock) or (meta if job.kind == "meta" else [])
            if not seen:
                return math.nan
            total += sum(seen) / len(seen)
        return total

    def execute(self, progress: bool = True) -> Path:
        """Run every job not yet done, in order; returns the table's path.

        Raises:
            JobInterrupted: A signal stopped the comparison (run it again to continue).
        """
        jobs = self.jobs()
        todo = [job for job in jobs if not self.done(job)]
        with (
            GracefulStop("stopping after the current job (signal again to abort)") as stop,
            tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="job", desc="compare",
                 disable=not progress, dynamic_ncols=True) as bar,
        ):  # fmt: skip
            for index, job in enumerate(todo):
                if job.kind == "eval" and not self.done(_Job("meta", job.recipe, job.seed)):
                    # only with --meta-from: that comparison has not trained this seed yet
                    tqdm.write(f"{job.label}: no policy in --meta-from yet; left for a later run")
                    bar.update()
                    continue
                left = self.estimate(todo[index:])
                eta = "time left unknown" if math.isnan(left) else f"~{_duration(left)} left"
                bar.set_postfix_str(f"{job.label}; {eta}")
                begin = time.perf_counter()
                try:
                    self.run(job)
                except JobInterrupted:
                    raise self._interrupted() from None
                self.state["durations"].setdefault(job.clock, []).append(
                    time.perf_counter() - begin
                )
                self._save()
                bar.update()
                if stop.requested:
                    raise self._interrupted()
        path = self.write_table()
        assert path is not None
        return path

    def _interrupted(self) -> JobInterrupted:
        self.write_table()
        return JobInterrupted(
            f"comparison stopped; finished runs are kept in {self.out}; continue with: "
            f"{self.command}"
        )


def compare_recipes(
    config: ComparisonConfig, argv: Sequence[str] | None = None, progress: bool = True
) -> Path:
    """Run (or continue) the comparison of ``config``; returns the path of ``ablation.md``."""
    return Comparison(config, argv).execute(progress=progress)


def _default_options() -> dict[str, Any]:
    """`ComparisonConfig.options` of the defaults (with a placeholder recipes file)."""
    fields = {f.name: f.default for f in dataclasses.fields(ComparisonConfig)}
    values = {k: v for k, v in fields.items() if k not in ("recipes_file", "out_dir")}
    return dict(json.loads(json.dumps(values)))


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
