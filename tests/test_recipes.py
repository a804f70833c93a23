"""The resumable recipe comparison: meta-train, evaluate, tabulate; stop and continue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.evaluation.recipes import Comparison, ComparisonConfig, read_recipes
from agents.stopping import JobInterrupted
from scripts import load_script

TINY_META = [
    "--train-tasks", "synthetic", "--eval-tasks", "synthetic-heldout", "--vec-env", "dummy",
    "--n-envs", "2", "--n-steps", "8", "--batch-size", "8", "--total-steps", "16",
    "--decisions", "4", "--budget", "200", "--eval-every", "0", "--checkpoint-every", "16",
    "--net-arch", "8",
]  # fmt: skip


def _recipes(path: Path, second: list[str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "reference": "base",
                "recipes": {"base": {"flags": TINY_META}, "wide": {"flags": TINY_META + second}},
            }
        )
    )
    return path


def _config(tmp_path: Path, **changes) -> ComparisonConfig:
    values = {
        "recipes_file": str(_recipes(tmp_path / "recipes.json", ["--net-arch", "16"])),
        "out_dir": str(tmp_path / "cmp"),
        "meta_seeds": (0, 1),
        "eval_seeds": (0, 1),
        "tasks": ("digits_cnn",),
        "baselines": ("static",),
        "fidelity": ("digits_cnn:0.1:1",),
        "decisions": 4,
        **changes,
    }
    return ComparisonConfig(**values)


def test_a_stopped_comparison_continues_without_redoing_finished_jobs(tmp_path, monkeypatch):
    config = _config(tmp_path)
    ran: list[str] = []
    original = Comparison.run

    stop_at = [2]

    def counted(self, job):
        if len(ran) == stop_at[0]:  # a signal during the third job: it stops at its checkpoint
            raise JobInterrupted("meta-training interrupted")
        ran.append(job.label)
        original(self, job)

    monkeypatch.setattr(Comparison, "run", counted)
    with pytest.raises(JobInterrupted, match="continue with: cmd"):
        Comparison(config, ["cmd"]).execute(progress=False)
    assert ran == ["baselines", "meta base s0"]
    stop_at[0] = -1
    ran.clear()
    table = Comparison(config, ["cmd"]).execute(progress=False)
    assert "baselines" not in ran
    assert "meta base s0" not in ran
    assert ran[0] == "eval base s0"
    assert len(ran) == 9 - 2
    text = table.read_text()
    assert "| base | 2 |" in text
    assert "| wide | 2 |" in text
    assert "Against `base`" in text
    assert "| wide | 2 |" in text
    assert "static (baseline)" in text
    figures = json.loads(table.with_suffix(".json").read_text())  # the table's numbers
    assert len(figures["recipes"]["wide"]["run_means"]) == 2
    assert f"{figures['against_reference']['wide']['mean_difference']:+.2f}" in text
    state = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert set(state["durations"]) >= {"baselines", "meta:base", "meta:wide", "eval"}
    ran.clear()
    Comparison(config, ["cmd"]).execute(progress=False)  # everything done: nothing runs
    assert ran == []
    # another comparison shares these baselines instead of running them again
    shared = tmp_path / "cmp" / "eval" / "baselines"
    other = _config(tmp_path, out_dir=str(tmp_path / "cmp2"), meta_seeds=(0,),
                    baselines_from=str(shared))  # fmt: skip
    assert [job.label for job in Comparison(other).jobs()] == [
        "meta base s0",
        "eval base s0",
        "meta wide s0",
        "eval wide s0",
    ]
    with pytest.raises(ValueError, match="lacks 2 finished baseline cells"):
        Comparison(_config(tmp_path, out_dir=str(tmp_path / "cmp3"), eval_seeds=(0, 1, 2, 3),
                           baselines_from=str(shared)))  # fmt: skip


def test_a_changed_recipes_file_or_option_is_refused(tmp_path):
    config = _config(tmp_path)
    Comparison(config)  # creates the folder
    _recipes(tmp_path / "recipes.json", ["--net-arch", "32"])
    with pytest.raises(ValueError, match="recipes cannot change"):
        Comparison(config)
    _recipes(tmp_path / "recipes.json", ["--net-arch", "16"])
    with pytest.raises(ValueError, match="--eval-seeds: the comparison has"):
        Comparison(_config(tmp_path, eval_seeds=(0, 1, 2)))


def test_bad_recipes_are_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"recipes": {"x": {"flags": ["--total-steps", "0"]}}}))
    with pytest.raises(ValueError, match="recipe 'x': total_steps must be >= 1"):
        read_recipes(bad)
    bad.write_text(json.dumps({"recipes": {"x": {"flags": ["--vec-env", "nope"]}}}))
    with pytest.raises(ValueError, match="recipe 'x': argument --vec-env: invalid choice"):
        read_recipes(bad)
    bad.write_text(json.dumps({"recipes": {"x": {"flags": ["--seed", "3"]}}}))
    with pytest.raises(ValueError, match="set by the comparison"):
        read_recipes(bad)
    toml = tmp_path / "r.toml"
    toml.write_text('reference = "a"\n[recipes.a]\nflags = ["--n-envs", "2"]\n')
    recipes, reference = read_recipes(toml)
    assert reference == "a"
    assert recipes[0].flags == ("--n-envs", "2")
    script = load_script("compare_recipes")
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as stopped:
        script.main(["--recipes-file", str(bad), "--out-dir", str(out)])
    assert stopped.value.code == 2
    assert not out.exists()


def test_the_same_policies_on_the_rescue_and_sgd_cells_with_meta_from(tmp_path, capsys):
    """--meta-from evaluates another comparison's policies (no meta-training) on other cells:
    --start-lr-factors and --optimizer reach the baselines and every policy's evaluation."""
    from agents.evaluation.ablation import read_scores

    main = _config(tmp_path, meta_seeds=(0,))
    Comparison(main).execute(progress=False)
    rescue = _config(
        tmp_path, out_dir=str(tmp_path / "rescue"), meta_seeds=(0, 1), meta_from=main.out_dir,
        start_lr_factors=(0.01, 30.0), optimizer="sgd",
    )  # fmt: skip
    comparison = Comparison(rescue)
    assert [job.label for job in comparison.jobs()] == [
        "baselines", "eval base s0", "eval wide s0", "eval base s1", "eval wide s1",
    ]  # fmt: skip
    table = comparison.execute(progress=False)
    assert "eval base s1: no policy in --meta-from yet" in capsys.readouterr().out
    assert not (tmp_path / "rescue" / "meta").exists()
    scores = read_scores(tmp_path / "rescue" / "eval" / "base" / "s0")
    assert {factor for _, _, factor, _ in scores} == {0.01, 30.0}
    saved = json.loads((tmp_path / "rescue" / "eval" / "base" / "s0" / "config.json").read_text())
    assert saved["config"]["optimizer"] == "sgd"
    assert "| base | 1 |" in table.read_text()
    other = _recipes(tmp_path / "other.json", ["--net-arch", "32"])
    mismatched = _config(tmp_path, out_dir=str(tmp_path / "x"), meta_from=main.out_dir,
                         recipes_file=str(other))  # fmt: skip
    with pytest.raises(ValueError, match="ran other recipes"):
        Comparison(mismatched)


def test_recipes_picks_a_subset_of_the_file(tmp_path):
    """--recipes runs (and tabulates) only the named recipes; unknown names are refused."""
    subset = Comparison(_config(tmp_path, recipes=("wide",), meta_seeds=(0, 1)))
    assert [job.label for job in subset.jobs()] == [
        "baselines", "meta wide s0", "eval wide s0", "meta wide s1", "eval wide s1",
    ]  # fmt: skip
    assert subset.reference == "wide"  # the file's first recipe is left out
    with pytest.raises(ValueError, match=r"--recipes \['nope'\]: not recipes of"):
        Comparison(_config(tmp_path, out_dir=str(tmp_path / "y"), recipes=("nope",)))
    with pytest.raises(ValueError, match="recipes must list distinct values"):
        _config(tmp_path, recipes=("wide", "wide"))


def test_a_comparison_begun_before_an_option_existed_continues(tmp_path):
    config = _config(tmp_path)
    Comparison(config)
    state_path = tmp_path / "cmp" / "comparison.json"
    state = json.loads(state_path.read_text())
    for added in ("start_lr_factors", "optimizer", "meta_from", "recipes"):
        del state["options"][added]
    state_path.write_text(json.dumps(state))
    Comparison(config)  # the missing options count as their defaults
    with pytest.raises(ValueError, match="--start-lr-factors: the comparison has"):
        Comparison(_config(tmp_path, start_lr_factors=(0.01,)))


def test_selection_vs_heldout_pairs_each_policys_score_with_its_heldout_mean(tmp_path, capsys):
    """scripts/selection_vs_heldout.py: the selected and the final policy of each run, their
    selection scores (best_policy.json, the last round of progress.csv) beside their held-out
    means, and whether the higher score is the better policy."""
    import json

    from hpenv.errors import InputError
    from scripts import load_script

    script = load_script("selection_vs_heldout")
    # run s0: selected at step 64 (score 0.2, held-out 80%), final 0.1 -> 70% (agrees);
    # run s1: selected at step 32 (score 0.3, 60%), final -0.5 -> 75% (disagrees)
    runs = {0: ((64, 0.2, 0.80), (0.1, 0.70)), 1: ((32, 0.3, 0.60), (-0.5, 0.75))}
    for name, policy in (("best", "best"), ("final", "final")):
        folder = tmp_path / name
        options = {"start_lr_factors": [1.0], "optimizer": None, "policy": policy,
                   "meta_from": str(tmp_path / "best") if name == "final" else None}  # fmt: skip
        folder.mkdir()
        (folder / "comparison.json").write_text(json.dumps({"options": options}))
        for seed, ((step, score, best_acc), (final_score, final_acc)) in runs.items():
            evaluated = folder / "eval" / "r" / f"s{seed}"
            evaluated.mkdir(parents=True)
            acc = best_acc if name == "best" else final_acc
            rows = ["method,task,start_lr_factor,seed,val_accuracy,diverged,error"]
            rows += [f"policy,t,1.0,{s},{acc},False," for s in range(2)]
            rows += ["policy,t,30.0,0,0.1,False,", "static,t,1.0,0,0.5,False,"]  # not counted
            (evaluated / "results.csv").write_text("\n".join(rows) + "\n")
            if name == "best":
                run = folder / "meta" / "r" / f"s{seed}"
                run.mkdir(parents=True)
                (run / "config.json").write_text(json.dumps({"reward": "paired_log_val_loss"}))
                (run / "best_policy.json").write_text(
                    json.dumps({"agent_steps": step, "mean_return": score})
                )
                (run / "progress.csv").write_text(
                    "time/total_timesteps,eval/mean_return\n"
                    f"{step},{score}\n80,\n96,{final_score}\n"
                )
    assert script.main(["--comparisons", str(tmp_path / "best"), str(tmp_path / "final")]) == 0
    printed = capsys.readouterr().out
    assert "| r | 0 | best | 64 | +0.2000 | 80.00 |" in printed
    assert "| r | 1 | final | 96 | -0.5000 | 75.00 |" in printed
    assert "better held-out in 1 of 2" in printed
    assert "-2.50 on average (range -15.00 to +10.00)" in printed
    with pytest.raises(SystemExit) as stopped:  # no run of that reward: one error line
        script.main(["--comparisons", str(tmp_path / "best"), "--reward", "log_val_loss"])
    assert stopped.value.code == 2
    assert "no evaluated policy" in capsys.readouterr().err
    (tmp_path / "progress.csv").write_text("time/total_timesteps,eval/mean_return\n8,\n")
    with pytest.raises(InputError, match="no selection round"):
        script.policy_score(tmp_path, "final")
