"""The training engine on the fakes: what a run writes, determinism per seed, separate random streams,
divergence as a result, and the CNN path (CIFAR-10 PNGs, augmentation, conv probes)."""

from __future__ import annotations

import json
import math

import pytest

from helpers import comparable, evaluated, read_rows
from normrepro.errors import ConfigError
from normrepro.store import read_metrics
from normrepro.train import run


def _values(rows, **match):
    return [r["value"] for r in rows if all(r.get(k) == v for k, v in match.items())]


def test_run_writes_the_documented_files_and_rows(engine_env):
    run_dir = engine_env.tmp / "run"
    summary = run(engine_env.cfg("norm=bn", "model.activation=sigmoid"), run_dir, "bn")
    assert sorted(p.name for p in run_dir.iterdir()) == ["DONE", "metrics.jsonl", "run_config.yaml",
                                                         "summary.json"]  # no checkpoint left
    assert (run_dir / "DONE").read_text() == "done\n"
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert "final" not in summary and "best" not in summary  # run facts only: results are the rows
    assert summary["status"] == "done" and summary["diverged_at"] is None and summary["steps_done"] == 12
    assert summary["params"] == 784 * 100 + 100 * 100 * 2 + 3 * 100 + 100 * 10 + 10 + 3 * 200  # + BN affine
    assert summary["samples_per_s"] > 0 and summary["threads"] == 1 and summary["device"] == "cpu"

    frame = read_metrics(run_dir / "metrics.jsonl")
    assert set(frame["split"]) == {"train", "val", "test", "probe"}
    for split in ("val", "test"):
        rows = frame[(frame["split"] == split) & (frame["metric"] == "acc")]
        assert list(rows["step"]) == [0, 6, 12]  # at init, every eval_every, at the end
        assert set(rows["bn_mode"]) == {"population"}
    train_loss = frame[(frame["split"] == "train") & (frame["metric"] == "loss")]
    assert list(train_loss["step"]) == [3, 6, 9, 12]  # every log_every
    lr = frame[(frame["split"] == "train") & (frame["metric"] == "lr")]["value"]
    assert (lr == 0.1).all()
    # the final evaluations, derived from the rows, are those of the last evaluation
    last = frame[frame["step"] == 12]
    for key, value in evaluated(run_dir).items():
        split, metric = key.split("/")
        assert value == pytest.approx(last[(last["split"] == split) & (last["metric"] == metric)]["value"].item())
    # per-layer gradient norms plus the total ("no layer")
    grads = frame[(frame["metric"] == "grad_norm") & (frame["step"] == 3)]
    assert set(grads["layer"].dropna()) == {"layers.0.linear", "layers.1.linear", "layers.2.linear", "head"}
    assert grads["layer"].isna().sum() == 1
    # sigmoid probes on every hidden layer, percentiles of units 0-2 of the last one
    probe = frame[(frame["split"] == "probe") & (frame["step"] == 0)]
    assert set(probe.loc[probe["metric"] == "frac_mid68", "layer"]) == {"1", "2", "3"}
    pct = probe[probe["metric"].isin(["preact_p15", "preact_p50", "preact_p85"])]
    assert set(pct["layer"]) == {"3"} and sorted(set(pct["unit"])) == [0, 1, 2]
    for unit in range(3):
        p = pct[pct["unit"] == unit].set_index("metric")["value"]
        assert p["preact_p15"] < p["preact_p50"] < p["preact_p85"]


def test_training_learns_the_fake_task(engine_env):
    """The fakes carry a class signal: a ReLU+BN MLP beats chance clearly within the smoke budget."""
    summary = run(engine_env.cfg("norm=bn", "train.steps=30", "train.eval_every=30", "train.ckpt_every=0",
                                 "probes.enabled=false"), engine_env.tmp / "run", "learn")
    rows = read_rows(engine_env.tmp / "run")
    final = evaluated(engine_env.tmp / "run")
    first, last = _values(rows, split="val", metric="loss")[0], final["val/loss"]
    assert last < first and summary["status"] == "done"
    assert final["val/acc"] > 0.5  # 10 classes: chance is 0.1


def test_same_seed_same_metrics_different_seed_different(engine_env):
    # dropout exercises the dropout stream, the default reshuffle order the data-order stream
    cfg = engine_env.cfg("norm=bn", "model.dropout_input=0.2", "model.dropout_hidden=0.5")
    run(cfg, engine_env.tmp / "a", "a")
    run(cfg, engine_env.tmp / "b", "b")
    a, b = comparable(read_rows(engine_env.tmp / "a")), comparable(read_rows(engine_env.tmp / "b"))
    assert len(a) > 100 and a == b  # identical values, bit for bit (JSON floats round-trip exactly)

    run(engine_env.cfg("norm=bn", "model.dropout_input=0.2", "model.dropout_hidden=0.5", "seed=1"),
        engine_env.tmp / "c", "c")
    c = comparable(read_rows(engine_env.tmp / "c"))
    assert [(r["step"], r["split"], r["metric"]) for r in c] == [(r["step"], r["split"], r["metric"]) for r in a]
    assert _values(a, split="test", metric="loss", step=0) != _values(c, split="test", metric="loss", step=0)
    assert _values(a, split="train", metric="loss") != _values(c, split="train", metric="loss")


def test_data_order_changes_only_the_order(engine_env):
    """Separate generators: the order stream does not move the init."""
    run(engine_env.cfg("data.order=reshuffle"), engine_env.tmp / "shuffled", "r")
    run(engine_env.cfg("data.order=sorted"), engine_env.tmp / "sorted", "s")
    r, s = read_rows(engine_env.tmp / "shuffled"), read_rows(engine_env.tmp / "sorted")
    at_init = [(x["split"], x["metric"], x.get("layer"), x["value"]) for x in r if x["step"] == 0]
    assert at_init == [(x["split"], x["metric"], x.get("layer"), x["value"]) for x in s if x["step"] == 0]
    assert _values(r, split="train", metric="loss") != _values(s, split="train", metric="loss")


def test_divergence_is_a_result_not_a_crash(engine_env):
    run_dir = engine_env.tmp / "div"
    summary = run(engine_env.cfg("norm=none", "optim.lr=1e6"), run_dir, "div")
    assert summary["status"] == "diverged"
    assert isinstance(summary["diverged_at"], int) and 1 <= summary["diverged_at"] <= 12
    assert summary["steps_done"] == summary["diverged_at"] and summary["samples_per_s"] is None
    assert (run_dir / "DONE").read_text() == "diverged\n"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"
    assert not (run_dir / "checkpoint.pt").exists()
    frame = read_metrics(run_dir / "metrics.jsonl")
    last = frame.iloc[-1]
    assert (last["split"], last["metric"], last["step"]) == ("train", "loss", summary["diverged_at"])
    assert not math.isfinite(last["value"])
    assert frame["step"].max() == summary["diverged_at"]  # nothing logged after it
    # rerunning the sweep skips it like any finished run
    assert run(engine_env.cfg("norm=none", "optim.lr=1e6"), run_dir, "div") == summary


def test_divergence_between_checks_is_placed_at_its_exact_step(engine_env):
    """The loss is read back only every ``train.check_every`` steps (no host sync in between); a divergence
    found at a later check is recorded at the step that diverged, with the same rows as a check every step."""
    quiet = ("norm=none", "optim.lr=1e6", "train.log_every=12", "train.eval_every=12")
    every = run(engine_env.cfg(*quiet, "train.check_every=1"), engine_env.tmp / "every", "every")
    rarely = run(engine_env.cfg(*quiet, "train.check_every=12"), engine_env.tmp / "rarely", "rarely")
    assert every["status"] == rarely["status"] == "diverged"
    assert every["diverged_at"] == rarely["diverged_at"] < 12  # the only check of `rarely` was after step 12
    rows = comparable(read_rows(rarely_dir := engine_env.tmp / "rarely"))
    assert rows == comparable(read_rows(engine_env.tmp / "every"))
    assert max(r["step"] for r in rows) == rarely["diverged_at"] and rarely_dir.joinpath("DONE").exists()


def test_cnn_on_cifar_pngs_with_augmentation(engine_env):
    cfg = engine_env.cfg("model=vgg", "model.stages=[8,16]", "model.width_mult=1.0", "data.augment=true",
                         "train.batch_size=32", "probes.examples=32", data="cifar10")
    run_dir = engine_env.tmp / "cnn"
    summary = run(cfg, run_dir, "cnn")
    assert summary["status"] == "done"
    frame = read_metrics(run_dir / "metrics.jsonl")
    assert len(frame[(frame["split"] == "test") & (frame["metric"] == "acc")]) == 3
    active = frame[(frame["metric"] == "frac_active") & (frame["step"] == 0)]
    assert set(active["layer"]) == {"1", "2", "3", "4"}  # four conv NormAct blocks
    assert active["value"].between(0.2, 0.8).all()  # BN before ReLU: about half the outputs are positive
    # Augmentation draws from its own stream: same seed, same metrics.
    run(cfg, engine_env.tmp / "cnn2", "cnn2")
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "cnn2"))


def test_step_schedule_and_train_eval_split(engine_env):
    run(engine_env.cfg("optim.schedule.kind=step", "optim.schedule.milestones=[0.5]",
                                 "optim.schedule.gamma=0.1", "train.eval_train_examples=32",
                                 "probes.enabled=false"), engine_env.tmp / "run", "sched")
    rows = read_rows(engine_env.tmp / "run")
    lrs = dict(zip([r["step"] for r in rows if r["metric"] == "lr"], _values(rows, metric="lr")))
    assert lrs[3] == pytest.approx(0.1) and lrs[12] == pytest.approx(0.01)
    assert _values(rows, split="train_eval", metric="acc", step=12) == [evaluated(engine_env.tmp / "run")["train_eval/acc"]]


def test_batch_stats_evaluation_on_a_split_smaller_than_a_batch(engine_env):
    cfg = engine_env.cfg("norm=bn", "train.eval_batch_stats=true", "train.batch_size=100", "data.eval_limit=64",
                         "probes.enabled=false")
    try:
        run(cfg, engine_env.tmp / "run", "batchstats")
    except ConfigError:  # refusing the combination up front would be fine too
        return
    assert math.isfinite(evaluated(engine_env.tmp / "run")["val/acc_batchstats"])
