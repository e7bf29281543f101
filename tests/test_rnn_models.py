"""Recurrent models (models/rnn.py), the PTB-char windows (data/text.py) and recurrent runs through the engine
on the fakes: sequences from images, the pixel permutation, h0 noise, bpc rows, the hidden-gradient probe and
the three BN evaluation modes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from helpers import evaluated
from normrepro.config import ModelConfig, NormConfig
from normrepro.data import load_char_splits
from normrepro.errors import ConfigError
from normrepro.measure.hidden_grads import hidden_grad_norms
from normrepro.models.rnn import CharLanguageModel, SequenceClassifier
from normrepro.store import read_metrics
from normrepro.train import run


def _model_cfg(**kw):
    return OmegaConf.structured(ModelConfig(arch="rnn", hidden=8, **kw))


def test_sequence_is_the_image_k_pixels_at_a_time():
    model = SequenceClassifier(_model_cfg(pixels_per_step=4), NormConfig(), (1, 4, 4), 3)
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    seq = model.sequence(x)
    assert seq.shape == (4, 2, 4)  # T = 16 / 4 steps
    assert torch.equal(seq[1, 0], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    assert model(x).shape == (2, 3)
    with pytest.raises(ValueError, match="divide"):
        SequenceClassifier(_model_cfg(pixels_per_step=5), NormConfig(), (1, 4, 4), 3)


def test_permutation_is_a_fixed_true_permutation():
    make = lambda seed: SequenceClassifier(_model_cfg(permute=True, permute_seed=seed), NormConfig(), (1, 28, 28), 10)  # noqa: E731
    a, b, c = make(0), make(0), make(1)
    assert torch.equal(a.perm, b.perm) and not torch.equal(a.perm, c.perm)
    assert torch.equal(a.perm.sort().values, torch.arange(784))
    assert (a.perm != torch.arange(784)).float().mean() > 0.99
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(a.sequence(x).transpose(0, 1).reshape(3, -1), x.reshape(3, -1)[:, a.perm])


def test_h0_noise_only_in_training():
    torch.manual_seed(0)
    model = SequenceClassifier(_model_cfg(pixels_per_step=16, h0_noise=0.5, cell="lstm"), NormConfig(),
                               (1, 4, 4), 3)
    x = torch.randn(5, 1, 4, 4)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_char_model_logits_fit_cross_entropy():
    cfg = OmegaConf.structured(ModelConfig(arch="char_rnn", hidden=8, cell="bn_lstm"))
    model = CharLanguageModel(cfg, NormConfig(), (7,), 11)
    x = torch.randint(0, 11, (4, 7))
    logits = model(x)
    assert logits.shape == (4, 11, 7)
    loss = F.cross_entropy(logits, x)
    assert abs(loss.item() - math.log(11)) < 0.3  # near uniform at init


def test_hidden_grad_norms_match_autograd():
    torch.manual_seed(0)
    model = SequenceClassifier(_model_cfg(pixels_per_step=4, cell="bn_tanh_rnn"), NormConfig(), (1, 4, 4), 3)
    x, y = torch.randn(6, 1, 4, 4), torch.randint(0, 3, (6,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = hidden_grad_norms(model, x, y)
    assert [t for t, _ in rows] == [1, 2, 3, 4]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters()) and model.hiddens == []
    # the last step's gradient is the head's: dL/dh_T = W_head^T (softmax - onehot) / N
    model.train()
    logits = model(x)
    probs = torch.softmax(logits, 1) - F.one_hot(y, 3)
    expected = (probs @ model.head.weight / 6).norm().item()
    assert rows[-1][1] == pytest.approx(expected, rel=1e-4)


def test_char_windows(fake_data_root):
    s = load_char_splits(str(fake_data_root), seq_len=10)
    assert s.name == "ptb_char" and s.input_shape == (10,) and s.train.x.shape[1] == 10
    assert torch.equal(s.train.x[0, 1:], s.train.y[0, :-1]) and torch.equal(s.train.x[1, 0], s.train.y[0, -1])
    eos = s.num_classes - 1
    assert (s.train.y == eos).any() and s.train.x.max() <= eos
    capped = load_char_splits(str(fake_data_root), seq_len=10, train_limit=5, eval_limit=3)
    assert len(capped.train.y) == 5 and len(capped.val.y) == 3 and len(capped.test.y) == 3


def test_rnn_run_writes_all_bn_modes_and_the_gradient_probe(engine_env):
    cfg = engine_env.cfg("setting=rnn_pmnist", "model.cell=bn_lstm", "probes.hidden_grad_norms=true",
                         "model.pixels_per_step=112")
    summary = run(cfg, engine_env.tmp / "run", "rnn")
    assert summary["status"] == "done"
    assert {"test/acc", "test/acc_batchstats", "test/acc_sharedstats"} <= set(evaluated(engine_env.tmp / "run"))
    frame = read_metrics(engine_env.tmp / "run" / "metrics.jsonl")
    test_acc = frame[(frame["split"] == "test") & (frame["metric"] == "acc")]
    assert set(test_acc["bn_mode"]) == {"population", "shared", "batch"}
    grads = frame[frame["metric"] == "hidden_grad_norm"]
    assert sorted(grads["unit"].astype(int)) == list(range(1, 8)) and (grads["value"] > 0).all()


def test_char_run_reports_bits_per_character(engine_env):
    cfg = engine_env.cfg("setting=rnn_ptb", "model.cell=lstm", "model.hidden=16", "data.seq_len=20", data=None)
    run(cfg, engine_env.tmp / "run", "ptb")
    final = evaluated(engine_env.tmp / "run")
    assert final["val/bpc"] == pytest.approx(final["val/loss"] / math.log(2))
    vocab = load_char_splits(str(engine_env.data), 20).num_classes
    assert final["test/bpc"] < math.log2(vocab)  # better than guessing uniformly
    assert 0.0 < final["test/acc"] < 1.0


@pytest.mark.parametrize("overrides, message", [
    (["setting=rnn_pmnist", "norm=bn"], "needs norm=none"),
    (["setting=rnn_pmnist", "model.cell=gru"], "model.cell"),
    (["setting=rnn_pmnist", "model.recurrent_init=eye"], "model.recurrent_init"),
])
def test_rnn_config_errors(engine_env, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(engine_env.cfg(*overrides), engine_env.tmp / "run", "bad")


def test_missing_ptb_is_one_line_naming_the_files(tmp_path):
    from normrepro.data import DatasetNotFound
    from normrepro.data.text import read_stream
    with pytest.raises(DatasetNotFound) as info:
        read_stream(tmp_path / "PTB" / "ptb.char.train.txt")
    text = str(info.value)
    assert "\n" not in text and "ptb.char.{train,valid,test}.txt" in text and "does not fetch PTB" in text
