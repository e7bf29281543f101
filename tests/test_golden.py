"""Golden regression: every case of ``golden_cases.py`` re-run and compared, number by number, with the file
blessed in ``tests/golden/`` (rtol 1e-5, atol 1e-7; the same rows, matched by step, split, metric, layer,
unit and bn_mode). A refactor of the training loop or of its measurements that changes none of these numbers
is pure; one that does must be re-blessed on purpose (``scripts/bless_golden.py``, docs/golden.md)."""

from __future__ import annotations

import copy

import pytest

from golden_cases import (
    ARCH_SETUPS,
    GOLDEN_DIR,
    WALL_CLOCK_METRICS,
    all_cases,
    failure_message,
    first_difference,
    golden_path,
    is_valid,
    load,
    record_case,
)

pytestmark = pytest.mark.integration

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_case_reproduces_its_golden_numbers(engine_env, path):
    expected = load(path)
    case = path.stem
    assert case in all_cases(), f"{path.name} is stale: no case {case!r} in golden_cases.py; delete the file"
    actual = record_case(case, engine_env.tmp / case)
    difference = first_difference(expected, actual)
    assert difference is None, failure_message(case, expected, difference)


def test_golden_set_covers_every_registered_arch_norm_weight_param_and_cell():
    """A new architecture, norm kind, weight parameterization or cell needs its golden files."""
    from normrepro.models.build import ARCHS, RECURRENT_ARCHS
    from normrepro.norms import NORM_KINDS
    from normrepro.norms.weight_param import WEIGHT_PARAMS
    from normrepro.rnn import CELLS

    assert set(ARCHS) <= set(ARCH_SETUPS), \
        f"golden_cases.ARCH_SETUPS lacks {sorted(set(ARCHS) - set(ARCH_SETUPS))}: give it a tiny setup"
    expected = {f"{arch}-{cell}" for arch in RECURRENT_ARCHS for cell in CELLS}
    expected |= {f"{arch}-{kind}-{wp}" for arch in ARCHS if arch not in RECURRENT_ARCHS
                 for kind in NORM_KINDS for wp in WEIGHT_PARAMS if is_valid(arch, kind, wp)}
    have = {p.stem for p in GOLDEN_FILES}
    missing = sorted(expected - have)
    assert not missing, f"no golden file for {missing}: run `python scripts/bless_golden.py {' '.join(missing)}`"
    # and between them the files use every registered choice at least once
    for axis, choices in (("norm kind", NORM_KINDS), ("weight_param", WEIGHT_PARAMS), ("cell", CELLS)):
        unused = [c for c in choices if not any(f"-{c}-" in f"-{name}-" for name in have)]
        assert not unused, f"no golden case uses {axis} {unused}"
    assert not sorted(have - set(all_cases())), "stale golden files: delete them"


def test_golden_set_exercises_every_metric_split_and_bn_mode():
    """A new measurement (a metric, split or BN mode in the store's vocabularies) needs a case that logs it."""
    from normrepro.store import BN_MODES, METRICS, SPLITS

    rows = [r for p in GOLDEN_FILES for r in load(p)["rows"]]
    unused = set(METRICS) - set(WALL_CLOCK_METRICS) - {r["metric"] for r in rows}
    assert not unused, f"no golden case logs {sorted(unused)}: add an instrument case to golden_cases.py"
    assert set(SPLITS) <= {r["split"] for r in rows}
    modes = {str(r["bn_mode"]).partition("@")[0] for r in rows if "bn_mode" in r}
    assert set(BN_MODES) <= modes, f"no golden case evaluates BN with {sorted(set(BN_MODES) - modes)}"


# ----------------------------------------------------------------------- the comparison can fail
@pytest.fixture(scope="module")
def golden():
    return load(golden_path("instr-mlp-ghost-teststats"))


def test_a_golden_record_matches_itself(golden):
    assert first_difference(golden, copy.deepcopy(golden)) is None


def test_a_value_moved_beyond_the_tolerance_is_named(golden):
    changed = copy.deepcopy(golden)
    i = next(i for i, r in enumerate(changed["rows"]) if r["metric"] == "loss" and r["split"] == "test")
    changed["rows"][i]["value"] *= 1 + 3e-5
    difference = first_difference(golden, changed)
    assert difference is not None and "differs in value" in difference
    assert str(changed["rows"][i]) in difference
    message = failure_message("instr-mlp-ghost-teststats", golden, difference)
    assert message.startswith("golden case instr-mlp-ghost-teststats: row ")
    assert "scripts/bless_golden.py instr-mlp-ghost-teststats" in message and "only if" in message


def test_a_value_moved_within_the_tolerance_passes(golden):
    changed = copy.deepcopy(golden)
    for r in changed["rows"]:
        if isinstance(r["value"], float):
            r["value"] *= 1 + 5e-6
    assert first_difference(golden, changed) is None


@pytest.mark.parametrize("fault,says", [
    ("drop_row", "is missing"), ("extra_row", "row(s) the golden file lacks"), ("bn_mode", "is missing"),
    ("nan", "differs in value"), ("epoch", "differs in epoch"), ("final", "final['test/acc_precise32']"),
    ("norms", "tensor_norms keys differ"), ("params", "params is")])
def test_every_kind_of_fault_is_detected(golden, fault, says):
    changed = copy.deepcopy(golden)
    rows = changed["rows"]
    precise = next(r for r in rows if r.get("bn_mode") == "precise@32")
    if fault == "drop_row":
        rows.remove(precise)
    elif fault == "extra_row":
        rows.append({**precise, "step": 13})
    elif fault == "bn_mode":
        precise["bn_mode"] = "precise@33"
    elif fault == "nan":
        precise["value"] = "nan"
    elif fault == "epoch":
        precise["epoch"] += 0.01
    elif fault == "final":
        changed["final"]["test/acc_precise32"] += 1e-3
    elif fault == "norms":
        changed["tensor_norms"].popitem()
    elif fault == "params":
        changed["params"] += 1
    difference = first_difference(golden, changed)
    assert difference is not None and says in difference, difference


def test_row_order_does_not_matter(golden):
    changed = copy.deepcopy(golden)
    changed["rows"].reverse()
    assert first_difference(golden, changed) is None


def test_on_another_cpu_only_the_first_steps_are_compared_by_value(golden):
    """Blessed elsewhere: late values may drift (float rounding amplified), structure and step <= 1 may not."""
    from golden_cases import PORTABLE_LAST_STEP

    elsewhere = {**copy.deepcopy(golden), "cpu": "another CPU"}
    late = next(r for r in elsewhere["rows"] if r["step"] > PORTABLE_LAST_STEP and isinstance(r["value"], float))
    late["value"] *= 1.05
    elsewhere["final"] = {k: v * 1.05 if isinstance(v, float) else v for k, v in elsewhere["final"].items()}
    assert first_difference(elsewhere, copy.deepcopy(golden)) is None
    early = next(r for r in elsewhere["rows"] if r["step"] <= PORTABLE_LAST_STEP and isinstance(r["value"], float)
                 and abs(r["value"]) > 1e-3)
    early["value"] *= 1.01
    assert "differs in value" in first_difference(elsewhere, copy.deepcopy(golden))
    dropped = copy.deepcopy(golden)
    dropped["rows"].pop()
    assert "is missing" in first_difference({**copy.deepcopy(golden), "cpu": "another CPU"}, dropped)
    assert "blessed on CPU 'another CPU'" in failure_message("c", elsewhere, "x")
