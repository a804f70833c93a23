"""Task registry, model families and the synthetic task family."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from hpenv.tasks import (
    SyntheticFamily,
    SyntheticSpec,
    UnknownTaskError,
    get_task,
    list_tasks,
)
from hpenv.testing import tiny_task_data
from hpenv.training import TrainingRun

REQUIRED = ["cifar10", "mnist", "fashion_mnist", "imdb", "ag_news", "trec", "digits", "synthetic"]
VARIANTS = [(name, model) for name in list_tasks() for model in sorted(get_task(name).models)]


def test_required_tasks_registered():
    assert set(REQUIRED) <= set(list_tasks())


def test_unknown_task_lists_known_ones():
    with pytest.raises(UnknownTaskError, match=r"known tasks: .*cifar10.*mnist"):
        get_task("cifar100")


def test_unknown_model_variant_is_an_error():
    with pytest.raises(ValueError, match="variants"):
        get_task("mnist", model="transformer")


@pytest.mark.parametrize(("name", "model"), VARIANTS)
def test_every_task_and_model_trains_a_few_steps(name: str, model: str):
    task = get_task(name, model=model)
    data = tiny_task_data(task, n_train=24, n_eval=8)
    run = TrainingRun(
        task, data=data, device="cpu", seed=0, hparams=task.defaults.replace(batch_size=8)
    )
    outputs = run.model(run._prepare(run.data.train_x[:4], train=True))
    expected_width = 1 if task.loss == "binary" else data.num_classes
    assert outputs.shape == (4, expected_width)
    assert outputs.dtype == torch.float32
    stats = run.train(16)
    assert stats.steps == 2
    assert stats.samples == 16
    assert math.isfinite(stats.loss_mean)
    assert not stats.diverged
    evaluation = run.evaluate()
    assert 0.0 <= evaluation.accuracy <= 1.0
    assert evaluation.samples == data.val_x.shape[0]


@pytest.mark.parametrize("name", list_tasks())
def test_task_data_dtypes(name: str):
    task = get_task(name)
    data = tiny_task_data(task)
    expected = {"image": torch.uint8, "text": torch.int32, "tabular": torch.float32}[data.kind]
    assert data.train_x.dtype == expected
    assert data.train_y.dtype == torch.int64


def test_models_take_dropout():
    task = get_task("mnist")
    data = tiny_task_data(task)
    run = TrainingRun(task, data=data, device="cpu")
    assert run._dropouts
    assert all(m.p == pytest.approx(0.2) for m in run._dropouts)
    run.set_hparams(dropout=0.5)
    assert all(m.p == pytest.approx(0.5) for m in run._dropouts)


def test_cifar_cnn_layout_matches_design():
    task = get_task("cifar10")
    model = task.build_model(tiny_task_data(task))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)]
    assert [lin.out_features for lin in linears] == [128, 10]


def test_imdb_model_layout_matches_design():
    task = get_task("imdb")
    model = task.build_model(tiny_task_data(task))
    assert model.embed.num_embeddings == 10_000
    assert model.embed.embedding_dim == 128
    assert model.lstm.hidden_size == 128
    assert model.out.out_features == 1


def test_synthetic_sampling_is_seeded_and_varied():
    family = SyntheticFamily()
    a = family.sample(np.random.default_rng(1))
    b = family.sample(np.random.default_rng(1))
    assert a == b
    specs = {family.sample(np.random.default_rng(seed)) for seed in range(20)}
    assert len({s.num_classes for s in specs}) > 3
    assert len({s.input_dim for s in specs}) > 5
    for spec in specs:
        assert family.input_dim[0] <= spec.input_dim <= family.input_dim[1]
        assert family.num_samples[0] <= spec.num_samples <= family.num_samples[1]
        assert spec.width in family.widths
        assert family.steps[0] <= spec.steps <= family.steps[1]
        assert 1 <= spec.task().budget_epochs <= 40
    # Budgets vary: some runs stop far short of others.
    steps = sorted(s.steps for s in specs)
    assert steps[-1] > 3 * steps[0]


def test_synthetic_build_is_deterministic_and_learnable():
    spec = SyntheticSpec(input_dim=8, num_classes=3, noise=0.0, num_samples=600, seed=3)
    first, second = spec.generate(), spec.generate()
    assert torch.equal(first.train_x, second.train_x)
    assert torch.equal(first.val_y, second.val_y)
    assert first.test_x is not None
    assert first.val_x.shape == (120, 8)
    run = TrainingRun(spec.task(), device="cpu", seed=0)
    for _ in range(10):
        run.train(600)
    # A noise-free teacher is learnable well beyond chance (1/3).
    assert run.evaluate().accuracy > 0.6


def test_synthetic_conv_members_are_images_through_a_small_cnn():
    plain = [SyntheticFamily().sample(np.random.default_rng(seed)) for seed in range(5)]
    mixed = SyntheticFamily(conv_fraction=0.5)
    specs = [mixed.sample(np.random.default_rng(seed)) for seed in range(20)]
    # The conv draw comes last: the default family's stream is unchanged.
    assert [dataclasses.replace(s, image=0, input_dim=p.input_dim) for s, p in
            zip(specs[:5], plain, strict=True)] == plain  # fmt: skip
    convs = [s for s in specs if s.image]
    assert 0 < len(convs) < len(specs)
    assert all(s.image in mixed.image_sizes and 1 <= s.input_dim <= 3 for s in convs)
    assert mixed.sample_like(np.random.default_rng(0), convs[0]).image == convs[0].image
    spec = SyntheticSpec(input_dim=2, image=8, num_classes=3, noise=0.0, num_samples=600, seed=3)
    data = spec.generate()
    assert data.train_x.shape == (600, 2 * 8 * 8)
    assert torch.equal(data.train_x, spec.generate().train_x)
    task = spec.task()
    assert task.model == "cnn"
    run = TrainingRun(task, device="cpu", seed=0)
    assert any(isinstance(m, torch.nn.Conv2d) for m in run.model.modules())
    for _ in range(10):
        run.train(600)
    assert run.evaluate().accuracy > 0.5  # the conv teacher is learnable (chance: 1/3)


def test_synthetic_text_members_are_token_sequences_through_an_embedding():
    plain = [SyntheticFamily().sample(np.random.default_rng(seed)) for seed in range(5)]
    mixed = SyntheticFamily(text_fraction=0.5)
    specs = [mixed.sample(np.random.default_rng(seed)) for seed in range(20)]
    # The text draw comes last: the default family's stream is unchanged.
    assert [dataclasses.replace(s, vocab=0, input_dim=p.input_dim) for s, p in
            zip(specs[:5], plain, strict=True)] == plain  # fmt: skip
    texts = [s for s in specs if s.vocab]
    assert 0 < len(texts) < len(specs)
    assert all(200 <= s.vocab <= 2_000 and 16 <= s.input_dim <= 64 for s in texts)
    like = mixed.sample_like(np.random.default_rng(0), texts[0])
    assert (like.vocab, like.input_dim) == (texts[0].vocab, texts[0].input_dim)
    # Convolutional members stay convolutional: a spec is never both.
    both = SyntheticFamily(conv_fraction=0.5, text_fraction=1.0)
    drawn = [both.sample(np.random.default_rng(seed)) for seed in range(20)]
    assert all(bool(s.image) != bool(s.vocab) for s in drawn)
    spec = SyntheticSpec(input_dim=12, vocab=40, num_classes=3, noise=0.0, num_samples=800,
                         width=32, seed=3)  # fmt: skip
    data = spec.generate()
    assert (data.kind, data.vocab_size) == ("text", 40)
    assert (data.train_x.shape, data.train_x.dtype) == ((800, 12), torch.int32)
    assert int(data.train_x.min()) >= 0
    assert int(data.train_x.max()) < 40
    assert (data.train_x == 1).sum() == 0  # the out-of-vocabulary id is never drawn
    assert (data.train_x[:, -1] != 0).all()  # left padding: the last token is real
    assert torch.equal(data.train_x, spec.generate().train_x)
    task = spec.task()
    assert task.model == "conv"
    run = TrainingRun(task, hparams=task.defaults.replace(lr=1e-2), device="cpu", seed=0)
    assert any(isinstance(m, torch.nn.Embedding) for m in run.model.modules())
    for _ in range(10):
        run.train(800)
    assert run.evaluate().accuracy > 0.6  # the bag-of-words teacher is learnable (chance: 1/3)


def test_synthetic_spec_validation():
    with pytest.raises(ValueError, match="invalid synthetic spec"):
        SyntheticSpec(num_classes=1)
    with pytest.raises(ValueError, match="invalid synthetic spec"):
        SyntheticSpec(steps=0)
    with pytest.raises(ValueError, match="invalid synthetic spec"):
        SyntheticSpec(image=2)
    with pytest.raises(ValueError, match="conv_fraction"):
        SyntheticFamily(conv_fraction=1.5)
    with pytest.raises(ValueError, match="invalid synthetic spec"):
        SyntheticSpec(vocab=4)
    with pytest.raises(ValueError, match="invalid synthetic spec"):
        SyntheticSpec(vocab=100, image=8)
    with pytest.raises(ValueError, match="text_fraction"):
        SyntheticFamily(text_fraction=2.0)


def test_budget_in_samples():
    task = get_task("digits")
    data = tiny_task_data(task, n_train=100)
    assert task.budget_samples(data) == round(task.budget_epochs * 100)


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_bundled_tables_load_standardised(name: str):
    data = get_task(name).load_data()
    features = torch.cat([data.train_x, data.val_x])
    assert torch.allclose(features.mean(0), torch.zeros(features.shape[1]), atol=1e-4)
    assert data.test_x is None
    assert data.source.startswith("scikit-learn")
