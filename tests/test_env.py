"""HPTuneEnv: API checkers on every id, determinism, divergence, budget, options."""

from __future__ import annotations

import itertools
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hpenv
from hpenv.env import Around, HPTuneEnv
from hpenv.hyperparams import TUNABLES
from hpenv.observation import INDEX, OBS_SIZE
from hpenv.tasks import get_task
from hpenv.testing import tiny_task_data

TINY = {"budget": 96, "decisions": 3, "device": "cpu", "data_fn": tiny_task_data}


def make(env_id: str = "HPTune-Digits-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, **{**TINY, **kwargs})


CHECKERS = {
    "gymnasium": lambda env: gym_check_env(env, skip_render_check=True),
    "sb3": lambda env: sb3_check_env(env, warn=True),
}


@pytest.mark.parametrize("checker", sorted(CHECKERS))
@pytest.mark.parametrize("env_id", sorted(hpenv.ENV_IDS))
def test_checkers_pass_without_warnings(env_id: str, checker: str):
    env = make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CHECKERS[checker](env.unwrapped)


def test_discrete_mode_passes_checkers():
    env = make(tuned=("lr", "batch_size"), action_mode="discrete")
    assert env.action_space == gym.spaces.MultiDiscrete([3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)


def test_make_with_module_prefix_needs_no_import():
    import subprocess
    import sys

    code = (
        "import gymnasium as gym; env = gym.make('hpenv:HPTune-Digits-v0', device='cpu'); "
        "print(env.observation_space.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"({OBS_SIZE},)"


def rollout(env: gym.Env, seed: int, actions: list[np.ndarray]):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info["hparams"], info["val_loss"]))
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_trajectory():
    actions = [
        np.array([0.5], np.float32),
        np.array([-1.0], np.float32),
        np.array([0.2], np.float32),
    ]
    env_a = make(task="synthetic", data_fn=None, budget=600)
    env_b = make(task="synthetic", data_fn=None, budget=600)
    a, b = rollout(env_a, 11, actions), rollout(env_b, 11, actions)
    np.testing.assert_array_equal(a[0], b[0])
    for step_a, step_b in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(step_a[0], step_b[0])
        assert step_a[1:] == step_b[1:]
    c = rollout(env_a, 12, actions)
    assert c[0][INDEX["lr"]] != a[0][INDEX["lr"]]  # another seed draws another initial lr


def ramp_until_divergence(env: gym.Env) -> tuple[list[float], dict]:
    """Raise the learning rate at every decision until the episode ends."""
    env.reset(seed=0)
    rewards, done, info = [], False, {}
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.array([1.0], np.float32))
        rewards.append(reward)
        done = terminated or truncated
    info["last_obs"], info["terminated"], info["truncated"] = obs, terminated, truncated
    return rewards, info


# SGD on MNIST-shaped data survives lr 0.03 but diverges once ramped to ~1.
DIVERGING = {"task": "mnist", "optimizer": "sgd", "budget": 600, "decisions": 4,
             "initial": {"lr": 0.03}}  # fmt: skip


def test_divergence_terminates_with_negative_reward():
    env = make(**DIVERGING)
    rewards, info = ramp_until_divergence(env)
    assert info["terminated"]
    assert not info["truncated"]
    assert info["diverged"]
    assert rewards[-1] < 0
    assert sum(rewards) < -1.0  # worse than any run ending below the divergence threshold
    assert info["last_obs"][INDEX["diverged"]] == 1.0
    assert env.observation_space.contains(info["last_obs"])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.0], np.float32))


@pytest.mark.parametrize("reward", ["log_val_loss", "val_accuracy", "final_accuracy"])
def test_divergence_reward_is_negative_for_every_reward(reward: str):
    rewards, info = ramp_until_divergence(make(**DIVERGING, reward=reward))
    assert info["terminated"]
    assert rewards[-1] < 0


def test_divergence_in_warmup_ends_without_penalty():
    env = make(**{**DIVERGING, "initial": {"lr": 1.0}, "budget": 2000})
    obs, info = env.reset(seed=0)
    assert info["diverged"]
    assert obs[INDEX["diverged"]] == 1.0
    obs, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
    assert terminated
    assert not truncated
    assert reward == 0.0
    assert info["diverged"]


def test_budget_counts_samples_when_batch_size_changes():
    env = make(tuned=("batch_size",), budget=1000, decisions=4, initial={"batch_size": 16})
    env.reset(seed=0)
    samples, truncated, steps = [], False, 0
    sizes = []
    while not truncated:
        _, _, _, truncated, info = env.step(np.array([1.0], np.float32))  # double every time
        samples.append(info["samples"])
        sizes.append(info["hparams"]["batch_size"])
        steps += 1
    assert sizes == [32, 64, 128, 256]
    assert samples == [400, 600, 800, 1000]  # a 200-sample warm-up, then 4 decisions
    assert env.unwrapped.run.samples_done == 1000


def test_reset_options_are_honoured():
    env = make(task=["digits", "mnist"])
    obs, info = env.reset(
        seed=0, options={"task": "mnist", "model": "cnn", "hparams": {"lr": 0.01}}
    )
    assert info["task"] == "mnist/cnn"
    assert info["hparams"]["lr"] == pytest.approx(0.01)
    assert obs[INDEX["lr"]] == pytest.approx(TUNABLES["lr"].normalise(0.01))
    _, info = env.reset(seed=0)
    assert info["task"] in ("digits/mlp", "mnist/mlp")
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"lr": 1})


def test_initial_lr_is_sampled_around_the_default():
    env = make()
    lrs = [env.reset(seed=s)[1]["hparams"]["lr"] for s in range(30)]
    default = get_task("digits").defaults.lr
    assert all(default / 10 <= lr <= default * 10 for lr in lrs)
    assert max(lrs) / min(lrs) > 20  # spread over most of the two decades
    fixed = make(initial={"lr": 3e-4})
    assert fixed.reset(seed=1)[1]["hparams"]["lr"] == pytest.approx(3e-4)
    wide = make(initial={"lr": Around(100, 30)})
    wide_lrs = [wide.reset(seed=s)[1]["hparams"]["lr"] for s in range(30)]
    assert min(wide_lrs) < default / 10


def test_multitask_and_synthetic_draw_different_tasks():
    env = make("HPTune-Synthetic-v0", data_fn=None, budget=64)
    specs = {env.reset(seed=s)[1]["task"] for s in range(3)}
    assert specs == {"synthetic/mlp"}
    sizes = set()
    for seed in range(5):
        env.reset(seed=seed)
        sizes.add(env.unwrapped.run.data.train_x.shape[1])
    assert len(sizes) > 1
    multi = make("HPTune-MultiTask-v0", task=["digits", "mnist", "imdb"])
    names = {multi.reset(seed=s)[1]["task"] for s in range(12)}
    assert names == {"digits/mlp", "mnist/mlp", "imdb/lstm"}


def test_actions_move_hyperparameters_by_their_documented_steps():
    env = make(tuned=("lr", "momentum", "weight_decay", "batch_size", "dropout"),
               initial={"lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 32,
                        "dropout": 0.2})  # fmt: skip
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1, 1, 1, 1, 1], np.float32))
    hp = info["hparams"]
    assert hp["lr"] == pytest.approx(3e-3)
    assert hp["momentum"] == pytest.approx(0.95)
    assert hp["weight_decay"] == pytest.approx(3e-4)
    assert hp["batch_size"] == 64
    assert hp["dropout"] == pytest.approx(0.3)
    _, _, _, _, info = env.step(np.array([-1, -1, -0.4, 0.3, -1], np.float32))
    hp = info["hparams"]
    assert hp["lr"] == pytest.approx(1e-3)
    assert hp["momentum"] == pytest.approx(0.9)
    assert hp["batch_size"] == 64  # |a| < 0.5 keeps the batch size
    assert hp["dropout"] == pytest.approx(0.2)


def test_actions_clip_to_ranges_and_reject_nan():
    env = make(initial={"lr": 0.9})
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([5.0], np.float32))
    assert info["hparams"]["lr"] == pytest.approx(TUNABLES["lr"].high)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan], np.float32))
    discrete = make(action_mode="discrete")
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match="discrete actions"):
        discrete.step(np.array([3]))


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="cannot tune"):
        HPTuneEnv("digits", tuned=("learning_rate",))
    with pytest.raises(ValueError, match="action_mode"):
        HPTuneEnv("digits", action_mode="binary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        HPTuneEnv("digits", budget=10, budget_epochs=1.0)
    with pytest.raises(ValueError, match="unknown reward"):
        HPTuneEnv("digits", reward="test_accuracy")
    with pytest.raises(ValueError, match="unknown task"):
        HPTuneEnv("cifar100")
    with pytest.raises(ValueError, match="optimizer"):
        HPTuneEnv("digits", optimizer="lion")


def test_info_keys_and_rewards_telescope():
    env = make(budget=300, decisions=3)
    _, info = env.reset(seed=0)
    start_loss = info["val_loss"]  # rewards count from the end of the warm-up
    assert info["samples"] == 75
    assert info["initial_val_loss"] > 0
    total, truncated = 0.0, False
    while not truncated:
        _, reward, _, truncated, info = env.step(np.zeros(1, np.float32))
        total += reward
    for key in ("task", "hparams", "samples", "budget", "train_loss", "train_loss_std",
                "grad_norm", "update_ratio", "val_loss", "val_accuracy", "diverged",
                "wall_time", "train_time", "eval_time"):  # fmt: skip
        assert key in info
    assert total == pytest.approx(math.log(start_loss / info["val_loss"]), rel=1e-6)
    assert info["wall_time"] >= info["train_time"] + info["eval_time"]


def test_render_modes():
    env = make(render_mode="ansi")
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
    text = env.render()
    assert isinstance(text, str)
    assert "digits/mlp" in text
    assert "lr=" in text
    picture = make(render_mode="rgb_array", tuned=("lr", "dropout"))
    picture.reset(seed=0)
    picture.step(np.zeros(2, np.float32))
    frame = picture.render()
    assert frame.dtype == np.uint8
    assert frame.ndim == 3
    assert frame.shape[2] == 3
    assert frame.std() > 0


def test_ppo_smoke_run_on_digits():
    from stable_baselines3 import PPO

    env = gym.make("HPTune-Digits-v0", budget=640, decisions=4, device="cpu", subset=0.3)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=16, n_epochs=2, seed=0, device="cpu",
                policy_kwargs={"net_arch": [16]})  # fmt: skip
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=64)
    after = list(model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # updated
    assert len(model.ep_info_buffer) >= 64 // 5 - 1  # whole episodes of 5 steps were played
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_per_task_fidelity_overrides_budget_and_subset():
    from hpenv.plan import Fidelity

    fidelity = {"mnist": Fidelity(subset=0.5, budget=40)}
    env = make(task=["digits", "mnist"], budget=None, fidelity=fidelity, budget_epochs=2.0)
    _, info = env.reset(seed=0, options={"task": "mnist"})
    assert info["budget"] == 40
    assert env.unwrapped.run.data.train_x.shape[0] == 32  # half of the 64 tiny samples
    _, info = env.reset(seed=0, options={"task": "digits"})
    assert info["budget"] == 128  # 2 epochs of 64
    with pytest.raises(ValueError, match="not both"):
        Fidelity(budget=1, budget_epochs=1.0)


@pytest.mark.parametrize("size", [16, 128, 256, 512])
def test_batch_size_half_actions_double_or_halve_any_size(size: int):
    from hpenv.hyperparams import tunable

    batch = tunable("batch_size")
    assert batch.step(size, 0.5) == 2 * size
    assert batch.step(size, -0.5) == size // 2
    assert batch.step(size, 0.49) == size
    assert batch.step(size, -0.49) == size


def test_rise_guard_holds_rises_until_the_loss_improves():
    from hpenv.hyperparams import RiseGuard

    guard = RiseGuard()
    tuned = ("momentum", "lr")
    # a rise records the loss; rises are then held, lowering and the others are not
    assert guard.filter(tuned, "discrete", [2, 2], val_loss=1.0).tolist() == [2, 2]
    assert guard.filter(tuned, "discrete", [2, 2], val_loss=1.0).tolist() == [2, 1]
    assert guard.filter(tuned, "discrete", [0, 0], val_loss=1.1).tolist() == [0, 0]
    assert guard.filter(tuned, "continuous", [1.0, 0.3], val_loss=math.nan).tolist() == [1.0, 0.0]
    state = guard.state_dict()
    assert state == {"loss_at_rise": 1.0, "held": 2}
    resumed = RiseGuard()
    resumed.load_state_dict(state)
    # the first improvement frees the rate, and the rise taken then is the new reference
    assert resumed.filter(tuned, "continuous", [0.0, 0.4], val_loss=0.9).tolist() == [0.0, 0.4]
    assert resumed.filter(tuned, "continuous", [0.0, 0.4], val_loss=0.95).tolist() == [0.0, 0.0]
    resumed.reset()
    assert resumed.filter(tuned, "continuous", [0.0, 0.4], val_loss=5.0).tolist() == [0.0, 0.4]
    # nothing to guard without a rate; a NaN action is left for apply_action to refuse
    assert RiseGuard().filter(("momentum",), "continuous", [1.0], 1.0).tolist() == [1.0]
    assert math.isnan(RiseGuard().filter(("lr",), "continuous", [math.nan], 1.0)[0])


def test_rise_guard_in_an_episode_keeps_the_rate_when_rises_stop_helping():
    env = HPTuneEnv("digits", budget=6 * 64 * 3, decisions=5, val_size=64, device="cpu",
                    initial={"lr": 0.3}, rise_guard=True)  # fmt: skip
    env.reset(seed=0)
    lrs = [env.run.hparams.lr]
    for _ in range(5):
        env.step(np.array([1.0], np.float32))
        lrs.append(env.run.hparams.lr)
    assert env.episode.guard.held > 0
    assert len(set(lrs)) < len(lrs)  # some rises were held
    assert all(b >= a for a, b in itertools.pairwise(lrs))  # never lowered


def test_fall_hold_in_an_episode_keeps_the_rate_while_the_loss_improves():
    """`EpisodeConfig.fall_hold`: a run that lowers the rate at every decision keeps its start
    while the validation loss is a new best, as a deployed policy's `FallHold` would; without
    the hold the same actions anneal from the first decision. Layout 2 refuses it."""
    from hpenv.base import BaseConfig
    from hpenv.episode_config import EpisodeConfig
    from hpenv.errors import InputError
    from hpenv.hyperparams import FALL_HOLD_THRESHOLD
    from hpenv.probe import ProbeConfig

    def lrs(fall_hold):
        env = HPTuneEnv("digits", budget=6 * 64 * 3, decisions=5, val_size=64, device="cpu",
                        fall_hold=fall_hold)  # fmt: skip
        env.reset(seed=0)
        out = [env.run.hparams.lr]
        for _ in range(5):
            env.step(np.array([-1.0], np.float32))
            out.append(env.run.hparams.lr)
        return out, env.episode.fall_hold

    held_lrs, hold = lrs(FALL_HOLD_THRESHOLD)
    free_lrs, none = lrs(None)
    assert none is None
    assert hold is not None
    assert hold.held > 0
    assert held_lrs[1] == held_lrs[0]  # the first interval improves on the untrained loss
    assert free_lrs[1] < free_lrs[0]
    assert all(b <= a for a, b in itertools.pairwise(held_lrs))  # held, never raised
    assert all(h >= f for h, f in zip(held_lrs, free_lrs, strict=True))
    with pytest.raises(InputError, match="layout-1"):
        EpisodeConfig(probe=ProbeConfig(), base=BaseConfig(), fall_hold=FALL_HOLD_THRESHOLD)
    with pytest.raises(InputError, match="threshold"):
        EpisodeConfig(fall_hold=-1.0)


def test_rise_guard_is_refused_over_absolute_steering():
    """With steer_mode 'absolute' an action sets the offset; a held 'rise' would snap the rate to
    the base, so the guard is refused there (config, artifact), and allowed over increments."""
    from policies import make_policy

    from hpenv.base import BaseConfig
    from hpenv.episode_config import EpisodeConfig
    from hpenv.errors import InputError
    from hpenv.probe import ProbeConfig

    absolute = BaseConfig(steer_mode="absolute")
    with pytest.raises(InputError, match="steer_mode 'absolute'"):
        EpisodeConfig(base=absolute, probe=ProbeConfig(), rise_guard=True)
    EpisodeConfig(base=BaseConfig(), probe=ProbeConfig(), rise_guard=True)
    policy = make_policy(obs_version=2, base={"steer_mode": "absolute"})
    with pytest.raises(InputError, match="steer_mode 'absolute'"):
        policy.with_rise_guard(True)
    policy.with_rise_guard(False)
