"""The architecture's rules, checked: which layer may import which, size limits, one list of result-neutral
keys, every instrument registered. A change that breaks a rule fails here with the offending name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from helpers import CONFIGS, REPO

SRC = REPO / "src" / "normrepro"


def _imports(path: Path) -> set[str]:
    """Every normrepro module a file imports (absolute imports; the package is imported absolutely)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("normrepro")}


def test_norms_import_nothing_above_them():
    offenders = [f"{p.name} imports {m}" for p in (SRC / "norms").glob("*.py") for m in _imports(p)
                 if not m.startswith("normrepro.norms")]
    assert not offenders, offenders


def test_measure_and_models_do_not_import_training_or_analysis():
    banned = ("normrepro.train", "normrepro.trainer", "normrepro.analysis", "normrepro.plan")
    offenders = [f"{p.relative_to(SRC)} imports {m}" for folder in ("measure", "models", "rnn", "data")
                 for p in (SRC / folder).glob("*.py") for m in _imports(p) if m.startswith(banned)]
    assert not offenders, offenders


def test_analysis_and_planning_import_no_torch_and_no_training():
    code = ("import sys, normrepro.analysis.cli, normrepro.plan; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m in "
            "('normrepro.train', 'normrepro.trainer') or m.startswith(('normrepro.models', 'normrepro.measure', "
            "'normrepro.norms'))); print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the analysis layer pulls in: {out}"


def test_source_files_and_functions_stay_small():
    too_long = []
    for p in SRC.rglob("*.py"):
        lines = p.read_text().splitlines()
        if len(lines) > 300:
            too_long.append(f"{p.relative_to(SRC)}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{p.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def test_the_training_loop_reads_in_one_screen():
    import inspect

    from normrepro.trainer import Trainer
    assert len(inspect.getsource(Trainer.fit).splitlines()) <= 50


def test_every_overridable_result_neutral_key_is_left_out_of_run_directory_names():
    from normrepro.config import RESULT_NEUTRAL_KEYS

    train = OmegaConf.load(CONFIGS / "train.yaml")
    excluded = set(train.hydra.job.config.override_dirname.exclude_keys)
    # the analysis blocks and the description are never command-line overrides of a job; experiment and scale
    # name the directory's parents instead
    not_overrides = {"description", "claims", "plots", "derived", "paper", "health", "deviations"}
    for key in set(RESULT_NEUTRAL_KEYS) - not_overrides:
        covered = key in excluded or any(e.startswith(key + ".") for e in excluded)
        assert covered, f"{key} is result-neutral but changes the run directory's name: add it to exclude_keys"
    for key in excluded - {"experiment", "scale"}:
        neutral = any(key == k or key.startswith(k + ".") for k in RESULT_NEUTRAL_KEYS)
        assert neutral, f"{key} is left out of run directory names but is not in RESULT_NEUTRAL_KEYS"


def test_every_instrument_module_is_registered_once():
    from normrepro.measure import INSTRUMENTS, Instrument

    names = [cls.name for cls in INSTRUMENTS.values()]
    assert len(names) == len(set(names))
    for p in (SRC / "measure").glob("*.py"):
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Instrument" for b in node.bases):
                assert node.name in {c.__name__ for c in INSTRUMENTS.values()}, f"{p.name}: {node.name} not in INSTRUMENTS"
    assert all(issubclass(c, Instrument) for c in INSTRUMENTS.values())
