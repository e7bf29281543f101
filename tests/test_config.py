"""Config layer: every experiment file composes and expands into jobs, its analysis blocks are well formed,
and mistakes (unknown keys, unknown group choices, invalid values) fail with a message that names them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

import normrepro.train  # noqa: F401  (registers the schema and the resolvers)
from helpers import ALL_EXPERIMENTS, REPO, compose_cfg, smoke_grid_size
from normrepro.analysis import claims as claims_mod
from normrepro.analysis import derive as derive_mod
from normrepro.analysis import plots as plots_mod
from normrepro.analysis.collect import flatten
from normrepro.analysis.results import name_result_columns
from normrepro.config import result_config
from normrepro.config_check import validate_config
from normrepro.errors import ConfigError
from normrepro.plan import plan_jobs
from normrepro.store import METRICS, SPLITS

# Planning composes every job (~0.2-0.5 s each here): big grids are left to `-m slow`.
PLAN_FAST_LIMIT = 8


def _plan_param(exp):
    slow = smoke_grid_size(exp) > PLAN_FAST_LIMIT
    return pytest.param(exp, marks=[pytest.mark.slow] if slow else [], id=exp)


# ---------------------------------------------------------------------------------------- composition
def check_composed(cfg, exp: str, scale: str) -> None:
    validate_config(cfg)  # the file's own values are valid choices
    assert cfg.scale.name == scale
    assert cfg.experiment_id == ("adhoc" if exp == "none" else exp)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert resolved["data"]["name"] in ("mnist", "cifar10", "digits")
    if scale == "smoke":  # smoke caps the budget whatever the experiment asks for
        assert cfg.train.steps <= 12 and cfg.train.eval_every <= cfg.train.steps
        assert cfg.data.train_limit <= 512 and cfg.data.eval_limit <= 256 and cfg.probes.examples <= 128


@pytest.mark.parametrize("exp", ALL_EXPERIMENTS)
def test_experiment_composes_at_smoke_scale(exp):
    check_composed(compose_cfg([f"experiment={exp}", "scale=smoke"]), exp, "smoke")


@pytest.mark.parametrize("exp", [_plan_param(e) for e in ALL_EXPERIMENTS])
def test_grid_expands_to_distinct_run_dirs(exp, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RUNS", str(tmp_path / "runs"))
    jobs = plan_jobs(exp, "smoke")
    assert len(jobs) >= 1
    dirs = [j.run_dir for j in jobs]
    assert len(set(dirs)) == len(dirs), "two jobs share a run directory"
    exp_id = jobs[0].cfg.experiment_id
    for job in jobs:
        assert job.run_dir.parent == tmp_path / "runs" / exp_id / "smoke"
        assert "hydra" not in job.cfg
        assert job.cfg.seed == 0  # smoke keeps one seed
        validate_config(job.cfg)
    # Distinct directories must hold distinct runs (else a sweep would mix them up) ...
    configs = [OmegaConf.to_yaml(OmegaConf.create(result_config(j.cfg))) for j in jobs]
    assert len(set(configs)) == len(configs)
    # ... and the directory name spells the job's own sweep values.
    for job in jobs:
        for override in job.overrides:
            assert override in job.run_dir.name.split(",")


def test_cli_sweep_narrows_the_grid_and_launcher_args_change_no_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RUNS", str(tmp_path))
    base = plan_jobs("demo", "smoke")
    assert sorted(j.cfg.norm.kind for j in base) == ["bn", "none"]
    narrowed = plan_jobs("demo", "smoke", ["norm=gn"])
    assert [j.cfg.norm.kind for j in narrowed] == ["gn"]
    two_seeds = plan_jobs("demo", "smoke", ["seed=0,1"])
    assert sorted((j.cfg.norm.kind, j.cfg.seed) for j in two_seeds) == [
        ("bn", 0), ("bn", 1), ("none", 0), ("none", 1)]
    # What the Makefile adds for parallel sweeps (launcher, threads) must not move any run directory.
    launched = plan_jobs("demo", "smoke", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1"])
    assert [j.run_dir for j in launched] == [j.run_dir for j in base]


# ------------------------------------------------------------------------------- analysis blocks
def _grid_columns(jobs) -> set[str]:
    leaves = [flatten(result_config(j.cfg)) for j in jobs]
    return {k for k in leaves[0] if len({str(x.get(k)) for x in leaves}) > 1} | {"seed"}


SUMMARY_COLUMNS = {"run", "status", "diverged", "steps_done", "diverged_at", "wall_time_s", "train_time_s",
                   "samples_per_s", "params", "git_sha", "device", "threads"}


@pytest.mark.parametrize("exp", ALL_EXPERIMENTS)
def test_experiment_composes_at_cpu_scale_with_analysis_blocks(exp):
    root = compose_cfg([f"experiment={exp}", "scale=cpu"], return_hydra_config=True)
    cfg = root.copy()
    with open_dict(cfg):
        del cfg["hydra"]  # (its runtime fields exist only inside a real Hydra job)
    check_composed(cfg, exp, "cpu")
    if exp == "none":  # a single run of the defaults: no grid, no analysis blocks
        assert not root.claims and not root.plots
        return
    spec = OmegaConf.to_container(root, resolve=False)
    spec = {**spec, **name_result_columns({"claims": spec["claims"], "plots": spec["plots"]})}  # {split, metric, ..}
    cfg_leaves = flatten({k: v for k, v in spec.items() if k != "hydra"})
    params = root.hydra.sweeper.params or {}
    assert params, f"{exp}: no sweep grid"
    for key, values in params.items():  # each swept group option exists (else the sweep fails midway)
        if "." not in key and key != "seed":
            for value in str(values).split(","):
                assert (REPO / "configs" / key / f"{value.strip()}.yaml").is_file(), (key, value)

    derived_names = set()
    for d in spec["derived"]:
        assert {"name", "kind"} <= set(d), d
        assert d["kind"] in derive_mod.KINDS, d
        if d["kind"] == "expr":
            assert isinstance(d.get("expr"), str) and d["expr"], d
            derived_names.add(d["name"])
            continue
        assert d["split"] in SPLITS, d
        for metric in d["metric"] if isinstance(d["metric"], list) else [d["metric"]]:
            assert metric in METRICS, d
        if d["kind"] == "steps_to":
            assert isinstance(d["threshold"], (int, float)), d
            derived_names.add(d["name"] + "_reached")
        if d["kind"] == "at_step":
            assert isinstance(d["step"], int), d
        derived_names.add(d["name"])

    # A claim's metric is a derived column or a summary value (final_/best_<split>_<metric>).
    # (an evaluation variant adds a suffix: test/acc_batchstats -> final_test_acc_batchstats)
    summary_metric = re.compile(rf"(final|best)_({'|'.join(SPLITS)})_(loss|acc|bpc)(_[a-z]+[0-9]*)?")
    known_metrics = derived_names | {"diverged", "steps_done", "samples_per_s", "train_time_s", "wall_time_s"}

    def is_metric(name: str) -> bool:
        return name in known_metrics or summary_metric.fullmatch(name) is not None
    # Filters use config leaves (or a sweep's group name, e.g. `norm` becomes `norm.kind`).
    ids = [c["id"] for c in spec["claims"]]
    assert len(set(ids)) == len(ids), f"{exp}: duplicate claim ids"
    for c in spec["claims"]:
        assert c["expect"] in claims_mod.EXPECTS, c
        assert c.get("text"), c
        for key in ("metric", "metric_a", "metric_b"):
            if key in c:
                assert is_metric(c[key]), f"{exp}/{c['id']}: unknown metric {c[key]!r}"
        assert c.get("metric") or c.get("metric_a"), c
        if c["expect"] == "between":
            lo, hi = c["range"]
            assert lo < hi, c
        else:
            assert "b" in c or "metric_b" in c, c
        if "reduce" in c:
            assert c["reduce"] in getattr(claims_mod, "REDUCERS", ("mean",)), c
        for arm in ("where", "a", "b", "a_minus", "b_minus"):
            for key in (c.get(arm) or {}):
                assert key in cfg_leaves, f"{exp}/{c['id']}: filter on unknown config key {key!r}"

    names = [p["name"] for p in spec["plots"]]
    assert names and len(set(names)) == len(names), f"{exp}: plots need distinct names"
    for p in spec["plots"]:
        assert p.get("kind", "line") in plots_mod.KINDS, p
        assert {"x", "y"} <= set(p), p
        source = p.get("source", "metrics")
        assert source in ("metrics", "runs"), p
        for key, value in (p.get("where") or {}).items():
            if key == "split":
                assert set(value if isinstance(value, list) else [value]) <= set(SPLITS), p
            elif key == "metric":
                assert set(value if isinstance(value, list) else [value]) <= set(METRICS), p
            elif key not in ("layer", "unit", "bn_mode", "step"):
                assert key in cfg_leaves, p
        columns = [p["x"], p["y"]] + [c for k in ("hue", "col", "row", "style") for c in
                                      (p.get(k) if isinstance(p.get(k), list) else [p.get(k)]) if c]
        for col in columns:
            ok = col in cfg_leaves or (source == "metrics" and col in
                                       ("step", "epoch", "value", "metric", "split", "layer", "unit", "bn_mode"))
            ok = ok or (source == "runs" and (is_metric(col) or col in SUMMARY_COLUMNS))
            assert ok, f"{exp}/{p['name']}: column {col!r} will not exist"


# ------------------------------------------------------------------------------------- mistakes
def test_unknown_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["optim.lrr=1"])
    message = str(info.value) + str(info.value.__cause__)
    assert "optim.lrr" in message and "lrr" in message


def test_unknown_group_choice_lists_the_options():
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["norm=bx"])
    message = str(info.value)
    assert "norm/bx" in message
    for option in ("bn", "gn", "in", "ln", "none"):
        assert f"\t{option}\n" in message + "\n"


def test_wrong_type_is_rejected_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["optim.lr=abc"])


def test_invalid_value_raises_config_error_naming_the_options(tmp_path):
    cfg = compose_cfg(["scale=smoke", "model.activation=foo"])
    with pytest.raises(ConfigError,
                       match=r"model\.activation='foo' \(valid: relu, sigmoid, tanh, lrelu, prelu, elu, linear\)"):
        validate_config(cfg)
    # train.run validates before touching the run directory or the data.
    with pytest.raises(ConfigError, match="relu, sigmoid, tanh, lrelu, prelu, elu, linear"):
        normrepro.train.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_all_invalid_values_are_reported_at_once():
    cfg = compose_cfg(["model.activation=foo", "norm.kind=xn", "optim.lr=0", "data.order=random"])
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    for part in ("model.activation='foo'", "norm.kind='xn'", "optim.lr=0", "data.order='random'",
                 "reshuffle, fixed, sorted"):
        assert part in message


@pytest.mark.parametrize("overrides", [["norm=in"], ["model=resnet", "model.placement=after_act"]],
                         ids=["in_on_mlp", "resnet_after_act"])
def test_impossible_combination_is_a_config_error(overrides):
    with pytest.raises(ConfigError):
        validate_config(compose_cfg(overrides))


def test_cli_rejects_unknown_choice_with_the_options(tmp_path):
    env = {**os.environ, "NORMREPRO_RUNS": str(tmp_path / "runs"), "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "-m", "normrepro.train", "norm=bx"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "norm/bx" in out
    assert all(option in out for option in ("bn", "gn", "ln", "none")), out[-2000:]
    assert not (tmp_path / "runs").exists()

