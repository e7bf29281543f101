"""Faults on the analysis and data side, each injected and its exact outcome asserted (docs/reliability-analysis.md):
no code runs from an experiment file's expressions or from a data pickle; damaged, partial, unfinished or
stale run directories are never collected as whole results; every experiment file's analysis blocks are
checked before any training, with one-line errors that name the entry and the valid choices."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from helpers import ALL_EXPERIMENTS, EXPERIMENT_FILES, REPO, compose_cfg, evaluated
from normrepro.analysis.collect import collect
from normrepro.analysis.columns import evaluation_keys, result_columns
from normrepro.analysis.derive import add_derived
from normrepro.analysis.run_check import CorruptRun, StaleRun, job_state
from normrepro.analysis.safe_expr import Expression, UnsafeExpression
from normrepro.analysis.spec_check import SpecError, check_experiment, check_job_config
from normrepro.data.errors import CorruptDataset, UnsafePickle
from normrepro.data.sources import read_cifar10
from normrepro.errors import ConfigError, UserError
from normrepro.plan import plan_jobs
from normrepro.rundir import RunDir
from normrepro.store import MetricsWriter

ATTACK = '@pd.io.common.os.system("touch {marker}")'


def one_line(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text, text
    return text


# ------------------------------------------------------------------------------ 1. no code from data
def test_the_attack_string_runs_nothing_and_names_the_entry(tmp_path):
    marker = tmp_path / "pwned"
    runs = pd.DataFrame({"run": ["r"], "final_test_acc": [0.9]})
    spec = {"name": "gap", "kind": "expr", "expr": ATTACK.format(marker=marker)}
    # the old evaluator would have run the command: the attack is real, not a straw man
    runs.eval(spec["expr"], engine="python", local_dict={"pd": pd})
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeExpression) as err:
        add_derived(runs, pd.DataFrame({"run": []}), [spec], None, 0)
    assert "derived 'gap'" in one_line(err) and isinstance(err.value, UserError)
    assert not marker.exists()


@pytest.mark.parametrize("expr,why", [
    ("__import__('os').system('true')", "calls .system() (attribute access"),
    ("__import__('os')", "calls '__import__'"),
    ("final_test_acc.__class__", "Attribute"),
    ("final_test_acc.values", "Attribute"),
    ("final_test_acc[0]", "Subscript"),
    ("(lambda: 1)()", "calls 'Lambda'"),
    ("open('/etc/passwd')", "calls 'open'"),
    ("eval('1')", "calls 'eval'"),
    ("[x for x in final_test_acc]", "ListComp"),
    ("'a' + 'b'", "constant 'a'"),
    ("@os", "does not parse"),
    ("f'{final_test_acc}'", "JoinedStr"),
    ("final_test_acc if seed else 0", "IfExp"),
    ("__builtins__", "dunder"),
    ("where(final_test_acc > 0, 1, x=2)", "keyword"),
    ("log", "without calling"),
    ("final_test_acc % 2", "Mod"),
    ("`norm.kind", "unmatched backtick"),
    ("1 +" * 300 + "1", "characters long"),
    ("1" + "0" * 400, "too large"),
])
def test_escapes_and_non_whitelisted_syntax_are_refused(expr, why):
    with pytest.raises(UnsafeExpression) as err:
        Expression(expr, "derived 'x'")
    message = one_line(err)
    assert message.startswith("derived 'x': expr ") and why in message and "allowed:" in message


def _experiment_exprs() -> list[tuple[str, str, str]]:
    out = []
    for path in EXPERIMENT_FILES:
        for d in OmegaConf.to_container(OmegaConf.load(path)).get("derived") or []:
            if d.get("kind") == "expr":
                out.append((path.stem, d["name"], d["expr"]))
    return out


EXTRA_EXPRS = ["-final_test_acc ** 2 / 3", "(`norm.kind` == 'bn') and not (final_test_acc < 0.5)",
               "0.1 < final_test_acc <= 0.95 or seed == 1", "abs(log(final_test_acc) - 1) + sqrt(exp(-seed))"]


NUMPY_ONLY = {"where": np.where, "maximum": np.maximum, "minimum": np.minimum}


def test_every_experiment_expression_evaluates_as_pandas_did():
    """Each expr of configs/experiment/*.yaml (and a few with backticks and logic) gives pandas' numbers."""
    exprs = _experiment_exprs()
    assert len(exprs) >= 9, exprs  # the files' expressions were found
    rng = np.random.default_rng(0)
    for exp, name, text in exprs + [("extra", f"e{i}", t) for i, t in enumerate(EXTRA_EXPRS)]:
        columns = Expression(text, name).columns
        frame = pd.DataFrame({c: rng.uniform(0.05, 2.0, 8) for c in columns})
        if "norm.kind" in frame:
            frame["norm.kind"] = ["bn", "none"] * 4
        if "seed" in frame:
            frame["seed"] = [0, 1] * 4
        ours = Expression(text, name).evaluate(frame)
        if any(f"{fn}(" in text for fn in NUMPY_ONLY):  # pandas' eval lacks these: numpy on the same columns
            theirs = eval(text, {"__builtins__": {}, **NUMPY_ONLY}, {c: frame[c].to_numpy() for c in columns})
        else:
            theirs = frame.eval(text, engine="python")  # trusted strings from this repository
        np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), err_msg=f"{exp}/{name}")
    # the functions pandas' eval lacks, against numpy
    frame = pd.DataFrame({"a": [0.2, 0.7, 1.5], "seed": [0, 1, 2]})
    ours = Expression("where(a > 0.5, maximum(a, 1), minimum(seed, 1))", "x").evaluate(frame)
    assert ours.tolist() == [0.0, 1.0, 1.5]


def test_an_expression_naming_a_missing_column_says_which():
    with pytest.raises(UnsafeExpression, match=r"names \['final_tset_acc'\].*columns: final_test_acc"):
        Expression("1 - final_tset_acc", "derived 'err'").evaluate(pd.DataFrame({"final_test_acc": [0.9]}))
    assert np.isinf(Expression("9 ** 9 ** 9 ** 9", "x").evaluate(pd.DataFrame({"a": [1]})))  # floats: no hang


# -------------------------------------------------------------------------------------- 2. pickles
def _cifar_folder(root, payloads: dict | None = None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                              "test_batch")):
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 9],
                 b"batch_label": name.encode(), b"filenames": [b"a.png"] * 4}
        payload = (payloads or {}).get(name, batch)
        (folder / name).write_bytes(pickle.dumps(payload, protocol=(2, 4, 5)[i % 3]))
    return folder


class _Shell:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_cifar_pickle_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "pwned"
    folder = _cifar_folder(tmp_path / "data", {"data_batch_3": {b"data": _Shell(marker), b"labels": []}})
    with pytest.raises(UnsafePickle) as err:
        read_cifar10(tmp_path / "data")
    message = one_line(err)
    assert str(folder / "data_batch_3") in message and "posix.system" in message and "make data" in message
    assert isinstance(err.value, CorruptDataset)  # callers that handle unusable data catch it
    assert not marker.exists()


def test_valid_cifar_pickles_of_every_protocol_still_load(tmp_path):
    _cifar_folder(tmp_path)
    x_train, y_train, x_test, y_test = read_cifar10(tmp_path)
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (4, 3, 32, 32) and x_train.dtype == np.uint8
    assert y_train.tolist() == [1, 2, 3, 9] * 5


# ------------------------------------------------------------------ 3./4. run directories, collection
def _finish(job, steps=(0, 6, 12), summary_extra=None, done=True, lose_after=None):
    """A finished demo-smoke run dir as train.run leaves it: run_config.yaml, metrics, summary.json, DONE
    (the summary written here, so the tests hold whatever else the run side records); ``lose_after``
    then drops the rows after that step, as damage after the run would."""
    rd = RunDir(job.run_dir, job.cfg)
    rd.claim()
    writer = MetricsWriter(rd.metrics_file)
    for step in steps:
        for split in ("val", "test"):
            writer.write(step, step / 20, split, "acc", 0.5 + step / 100)
            writer.write(step, step / 20, split, "loss", 1.0 - step / 100)
    writer.close()
    summary = {"status": "done", "diverged_at": None, "steps_done": 12,
               "final": {"test/acc": 0.62, "val/acc": 0.61}, "best": {"test/acc": 0.62}, **(summary_extra or {})}
    if done:
        rd.summary_file.write_text(json.dumps(summary))
        rd.done_file.write_text("done\n")
    if lose_after is not None:
        lines = rd.metrics_file.read_text().splitlines()
        rd.metrics_file.write_text("".join(line + "\n" for line in lines if json.loads(line)["step"] <= lose_after))
    return rd


@pytest.fixture
def demo_jobs(engine_env):
    return plan_jobs("demo", "smoke", ["threads=1"])


def test_whole_runs_collect(demo_jobs, capsys):
    for job in demo_jobs:
        _finish(job, summary_extra={"metrics_rows": 12, "metrics_last_step": 12})
    collected = collect(demo_jobs)
    assert len(collected.runs) == 2 and collected.runs["final_test_acc"].tolist() == [0.62, 0.62]
    assert "jobs_done=2/2" in capsys.readouterr().out


def test_a_torn_line_in_the_middle_of_metrics_refuses_naming_file_and_line(demo_jobs):
    for job in demo_jobs:
        _finish(job)
    path = demo_jobs[1].run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:17]  # a torn write, then more rows
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptRun) as err:
        collect(demo_jobs)
    message = one_line(err)
    assert f"{path}:4: not JSON" in message and f"delete {demo_jobs[1].run_dir}" in message
    assert "make reproduce-demo SCALE=smoke" in message


def test_a_row_outside_the_schema_refuses(demo_jobs):
    _finish(demo_jobs[0])
    path = demo_jobs[0].run_dir / "metrics.jsonl"
    path.write_text(path.read_text().replace('"metric": "acc"', '"metric": "accc"', 1))
    with pytest.raises(CorruptRun, match=r"unknown metric 'accc'.*damaged.*delete"):
        collect(demo_jobs)


def test_a_torn_last_line_of_a_finished_run_refuses(demo_jobs):
    _finish(demo_jobs[0])
    path = demo_jobs[0].run_dir / "metrics.jsonl"
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(CorruptRun) as err:
        collect(demo_jobs)
    assert "last line is torn although the run finished" in one_line(err) and str(path) in str(err.value)


@pytest.mark.parametrize("damage,expected", [
    (lambda p: p.write_text('{"status": "done", "steps_'), "is damaged (not JSON"),
    (lambda p: p.write_text("[1, 2]"), "lacks status/steps_done"),
    (lambda p: p.unlink(), "is missing although DONE exists"),
])
def test_a_damaged_summary_refuses_naming_it(demo_jobs, damage, expected):
    _finish(demo_jobs[0])
    damage(demo_jobs[0].run_dir / "summary.json")
    with pytest.raises(CorruptRun) as err:
        collect(demo_jobs)
    message = one_line(err)
    assert f"{demo_jobs[0].run_dir / 'summary.json'} {expected}" in message and "delete" in message


def test_metrics_without_done_are_reported_unfinished_and_left_out(demo_jobs, capsys):
    _finish(demo_jobs[0])
    _finish(demo_jobs[1], steps=(0, 6), done=False)  # killed mid-run
    assert job_state(demo_jobs[1]).state == "unfinished"
    collected = collect(demo_jobs)
    assert collected.runs["run"].tolist() == [demo_jobs[0].run_dir.name]
    assert collected.unfinished == [demo_jobs[1].run_dir]
    assert set(collected.metrics["run"]) == {demo_jobs[0].run_dir.name}  # no partial rows sneak in
    out = capsys.readouterr().out
    assert f"jobs_done=1/2 (1 unfinished, left out: no DONE in {demo_jobs[1].run_dir}" in out


@pytest.mark.parametrize("extra,expected", [
    ({}, "ends at step 6 but .* says the run did 12 steps"),  # steps_done only (runs made before the counts)
    ({"metrics_rows": 12, "metrics_last_step": 12}, "has 8 rows but .* records 12"),
    ({"metrics_last_step": 12}, "ends at step 6 but .* records its last step as 12"),
    ({"rows": 12}, "has 8 rows but .* records 12"),
])
def test_rows_that_stop_short_of_the_recorded_steps_refuse(demo_jobs, extra, expected):
    _finish(demo_jobs[0], summary_extra=extra, lose_after=6)  # the step-12 rows were lost after the run
    with pytest.raises(CorruptRun, match=expected) as err:
        collect(demo_jobs)
    assert str(demo_jobs[0].run_dir / "metrics.jsonl") in one_line(err)


def test_rows_added_after_the_run_refuse(demo_jobs):
    _finish(demo_jobs[0], steps=(0, 6, 12, 18), summary_extra={"metrics_rows": 16, "metrics_last_step": 12})
    with pytest.raises(CorruptRun, match="ends at step 18 but .* records its last step as 12"):
        collect(demo_jobs)


def test_a_failed_job_is_not_finished_and_left_out(demo_jobs, capsys):
    _finish(demo_jobs[0])
    demo_jobs[1].run_dir.mkdir(parents=True)
    (demo_jobs[1].run_dir / "FAILED").write_text("corrupt data file ...\n")
    assert job_state(demo_jobs[1]).state == "failed"
    assert len(collect(demo_jobs).runs) == 1
    assert "jobs_done=1/2 (1 unfinished, 1 of them FAILED, left out: no DONE in" in capsys.readouterr().out


def test_a_run_made_with_other_settings_is_stale_not_collected(demo_jobs):
    for job in demo_jobs:
        _finish(job)
    config_file = demo_jobs[0].run_dir / "run_config.yaml"
    old = OmegaConf.load(config_file)
    old.optim.lr = 0.1  # the experiment file's lr changed after this run was made
    OmegaConf.save(old, config_file)
    state = job_state(demo_jobs[0])
    assert state.state == "stale" and state.diff == ["optim.lr"]
    with pytest.raises(StaleRun) as err:
        collect(demo_jobs)
    message = one_line(err)
    assert f"{demo_jobs[0].run_dir} (keys optim.lr)" in message and "1 finished run(s) of demo" in message
    assert str(demo_jobs[1].run_dir) not in message


def test_a_key_only_the_new_config_has_is_a_schema_addition_not_staleness(demo_jobs, capsys):
    _finish(demo_jobs[0])
    config_file = demo_jobs[0].run_dir / "run_config.yaml"
    old = OmegaConf.to_container(OmegaConf.load(config_file))
    del old["norm"]["momentum_slow"]  # made before that option existed
    OmegaConf.save(OmegaConf.create(old), config_file)
    assert job_state(demo_jobs[0]).state == "done"
    assert len(collect(demo_jobs).runs) == 1


def test_plan_script_shows_stale_and_unfinished_jobs(demo_jobs, engine_env):
    _finish(demo_jobs[0])
    _finish(demo_jobs[1], done=False)
    config_file = demo_jobs[0].run_dir / "run_config.yaml"
    config_file.write_text(config_file.read_text().replace("lr: 0.5", "lr: 0.25"))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plan.py"), "demo", "--scale", "smoke",
                           "threads=1"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[stale: keys optim.lr differ]" in proc.stdout and "[unfinished]" in proc.stdout
    assert "2 jobs, 1 stale, 1 unfinished, 2 to run" in proc.stdout


# ------------------------------------------------------------- 5. experiment blocks, before training
@pytest.mark.parametrize("exp", ALL_EXPERIMENTS)
def test_every_experiment_file_passes_the_checker(exp):
    """At the cpu scale the files are written for; one seed per grid point keeps it to seconds (the seeds
    change no other key)."""
    jobs = plan_jobs(exp, "cpu", ["seed=0"], check=False)
    check_experiment([j.cfg for j in jobs], ["seed=0"])  # the whole grid
    check_job_config(jobs[-1].cfg)  # what one training job checks


@pytest.fixture(scope="module")
def bn_mnist_specs():
    """bn_mnist's planned job configs as plain dicts, to mutate one block entry at a time."""
    return [OmegaConf.to_container(j.cfg, resolve=True) for j in plan_jobs("bn_mnist", "cpu", check=False)]


def _mutated(specs, block, index, change):
    specs = copy.deepcopy(specs)
    for spec in specs:
        change(spec[block][index])
    return specs


@pytest.mark.parametrize("block,index,change,expected", [
    ("claims", 1, lambda c: c.update(metric="final_tset_acc"),
     "claims 'higher': metric 'final_tset_acc' is not a derived name or a result column; did you mean final_test_acc "),
    ("claims", 0, lambda c: c.update(metric="steps_to_98"), "did you mean steps_to_97"),
    ("claims", 1, lambda c: c.update(expect="bigger"), "claims 'higher': unknown expect 'bigger'; valid: between, "
                                                      "equal, greater, less"),
    ("claims", 1, lambda c: c.update(reduce="median"), "unknown reduce 'median'; did you mean mean or min? valid: max, mean, min, range"),
    ("claims", 1, lambda c: c.update(a={"norm.knd": "bn"}),
     "a filter on 'norm.knd': not a column of the runs table; did you mean norm.kind "),
    ("claims", 1, lambda c: c.update(b={"norm.kind": "nonee"}),
     "b filter on 'norm.kind': 'nonee' is not a value of the grid; valid: bn, none"),
    ("claims", 1, lambda c: c.update(where={"model.activation": "relu"}),
     "where filter on 'model.activation': 'relu' is not a value of the grid; valid: sigmoid"),
    ("claims", 1, lambda c: c.update(a_minus={"sed": 0}), "a_minus filter on 'sed'"),
    ("claims", 1, lambda c: c.update(exepct="less"), "unknown field 'exepct'; did you mean expect "),
    ("claims", 3, lambda c: c.update(range=[0.73, 0.63]), "expect between needs range: [low, high]"),
    ("claims", 3, lambda c: c.update(b={"norm.kind": "none"}), "judges arm a alone: 'b' would be ignored"),
    ("claims", 1, lambda c: c.update(b={"norm.kind": "bn"}), "the effect is 0 by construction"),
    ("claims", 1, lambda c: c.pop("id"), "claims[1]: needs a 'id'"),
    ("derived", 0, lambda d: d.update(kind="median"), "derived 'steps_to_97': unknown kind 'median'"),
    ("derived", 0, lambda d: d.update(split="tset"), "unknown split 'tset'; did you mean test?"),
    ("derived", 1, lambda d: d.update(metric=["preact_p15", "preact_p5O"]), "unknown metric 'preact_p5O'"),
    ("derived", 0, lambda d: d.pop("threshold"), "kind steps_to needs a numeric 'threshold'"),
    ("derived", 2, lambda d: d.update(bn_mode="populaton"), "unknown bn_mode 'populaton'"),
    ("derived", 0, lambda d: d.update(kind="expr", expr=ATTACK.format(marker="/tmp/x")),
     "derived 'steps_to_97': expr '@pd.io"),
    ("derived", 0, lambda d: d.update(kind="expr", expr="1 - final_test_accc"),
     "expr names 'final_test_accc', not a column"),
    ("plots", 0, lambda p: p.update(kind="pie"), "plots 'test_accuracy': unknown kind 'pie'; valid: bar, box"),
    ("plots", 0, lambda p: p.update(source="run"), "unknown source 'run'; did you mean runs?"),
    ("plots", 0, lambda p: p.update(hue="norm.knd"), "hue 'norm.knd' is not a column of the metrics table"),
    ("plots", 0, lambda p: p.update(y="final_test_acc"), "y 'final_test_acc' is not a column of the metrics"),
    ("plots", 0, lambda p: p.update(where={"split": "tst", "metric": "acc"}), "unknown split 'tst'"),
    ("plots", 0, lambda p: p.update(where={"split": "test", "metric": "accuracy"}), "unknown metric 'accuracy'"),
    ("plots", 0, lambda p: p.update(capton="x"), "unknown field 'capton'; did you mean caption "),
    ("plots", 0, lambda p: p.pop("x"), "needs 'x'"),
    ("deviations", 0, lambda d: d.pop("effect"), "deviations 'input scaling': a deviation has exactly the keys "
                                                 "effect, here, paper, what; missing effect"),
    ("deviations", 1, lambda d: d.update(why="x"), "unknown why"),
])
def test_a_typo_in_any_block_is_one_line_naming_entry_and_choices(bn_mnist_specs, block, index, change, expected):
    check_experiment(bn_mnist_specs)  # unchanged: passes
    with pytest.raises(SpecError) as err:
        check_experiment(_mutated(bn_mnist_specs, block, index, change))
    message = one_line(err)
    assert message.startswith("configs/experiment/bn_mnist.yaml: ") and expected in message, message
    assert isinstance(err.value, ConfigError)


def test_all_problems_are_reported_at_once(bn_mnist_specs):
    specs = _mutated(bn_mnist_specs, "claims", 0, lambda c: c.update(metric="nope"))
    specs = _mutated(specs, "plots", 1, lambda p: p.update(kind="pie"))
    with pytest.raises(SpecError, match=r"claims 'faster'.*; plots 'sigmoid_input_percentiles': unknown kind"):
        check_experiment(specs)


def test_a_training_job_checks_the_blocks_before_loading_data(engine_env, monkeypatch):
    """train.run refuses a typo'd claim before any data is read (the data root does not even exist)."""
    from normrepro.train import run

    cfg = compose_cfg(["experiment=demo", "scale=smoke", "threads=1", "data.root=/nonexistent",
                       "claims.0.metric=steps_to_9O"])
    with pytest.raises(SpecError, match=r"claims 'bn_faster': metric 'steps_to_9O'.*did you mean steps_to_90"):
        run(cfg, engine_env.tmp / "job")
    assert not (engine_env.tmp / "job" / "metrics.jsonl").exists()


def test_make_plan_refuses_a_typo_in_one_line(tmp_path):
    """scripts/plan.py (make plan-<id>) with an experiment file whose claim has a typo."""
    configs = tmp_path / "configs"
    subprocess.run(["cp", "-r", str(REPO / "configs"), str(configs)], check=True)
    path = configs / "experiment" / "demo.yaml"
    path.write_text(path.read_text().replace("expect: greater", "expect: greaterr"))
    env = {**os.environ, "NORMREPRO_CONFIGS": str(configs), "NORMREPRO_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plan.py"), "demo", "--scale", "smoke"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: configs/experiment/demo.yaml: claims 'bn_higher': unknown expect 'greaterr'; did you mean greater? "
        "valid: between, equal, greater, less"]


# ---------------------------------------------------------------------- 6. other analysis-side faults
def test_an_override_no_job_uses_is_refused(engine_env):
    with pytest.raises(SpecError) as err:
        plan_jobs("demo", "smoke", ["model.depth=32"])
    assert "override 'model.depth=32' has no effect on demo: model.depth applies to model.arch resnet, and " \
           "its jobs use mlp" in one_line(err)
    plan_jobs("demo", "smoke", ["model.widths=[32,32]"])  # an mlp setting on mlp jobs is fine


def test_an_empty_grid_and_an_unknown_experiment_are_one_line(engine_env):
    with pytest.raises(ConfigError, match=r"experiment demo: the sweep .*seed=range\(0,0\).* expands to no jobs"):
        plan_jobs("demo", "smoke", ["seed=range(0,0)"])
    with pytest.raises(ConfigError, match=r"unknown experiment 'bn_mnsit'.*valid: .*bn_mnist, bn_mnist_lr"):
        plan_jobs("bn_mnsit", "smoke")


def test_result_columns_name_what_a_run_really_records(engine_env):
    """columns.result_columns (what the checker accepts) = the keys a run's evaluation rows give."""
    from normrepro.train import run

    cfg = engine_env.cfg("train.eval_batch_stats=true", "norm.momentum_slow=0.01", "train.bn_eval_precise=[64]",
                         "train.bn_eval_test_batches=[8]", "train.eval_train_examples=32", "probes.enabled=false")
    run(cfg, engine_env.tmp / "job")
    container = OmegaConf.to_container(cfg, resolve=True)
    assert sorted(evaluated(engine_env.tmp / "job")) == sorted(evaluation_keys(container))
    assert {"final_test_acc_precise64", "best_train_eval_loss_batchstats", "final_test_loss_batch8",
            "final_test_acc_emaslow"} <= set(result_columns(container))


def test_a_narrowed_sweep_keeps_the_columns_its_blocks_name(engine_env):
    """`make reproduce-demo norm=gn` fixes norm.kind; its plots (hue norm.kind) and claims still find it."""
    jobs = plan_jobs("demo", "smoke", ["norm=gn", "threads=1"])
    _finish(jobs[0])
    collected = collect(jobs)
    assert collected.grid_columns == ["seed"]
    assert collected.runs["norm.kind"].tolist() == ["gn"] and set(collected.metrics["norm.kind"]) == {"gn"}
