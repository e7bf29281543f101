"""notebooks/explore_results.ipynb runs end to end on results made by the real pipeline (smoke scale).

The results come from the same two commands as `make reproduce-demo SCALE=smoke`, in a temporary folder;
the notebook is executed for real in a Jupyter kernel of this interpreter (nbclient), pointed at them
through NORMREPRO_RESULTS / NORMREPRO_SCALE. About 25 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore_results.ipynb"
KERNEL = "normrepro-test"


def _pipeline_env(tmp: Path) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "disabled", "NORMREPRO_CACHE": str(tmp / "cache")}
    env.pop("NORMREPRO_RESULTS", None)
    env.pop("NORMREPRO_RUNS", None)
    return env


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> Path:
    """results/ of the demo at smoke scale (two runs: bn and none, one seed), made by the real commands."""
    tmp = tmp_path_factory.mktemp("demo_smoke")
    env = _pipeline_env(tmp)
    commands = [
        [sys.executable, "-m", "normrepro.train", "-m", "experiment=demo", "scale=smoke",
         f"paths.runs={tmp / 'runs'}", "threads=1"],
        [sys.executable, "-m", "normrepro.analysis", "demo", "--scale", "smoke", "--results", str(tmp / "results"),
         f"paths.runs={tmp / 'runs'}"],
    ]
    for cmd in commands:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd[1:])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (tmp / "results" / "demo-smoke" / "summary.csv").is_file()
    return tmp / "results"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernel spec that starts this very interpreter (whatever `python3` means elsewhere on the machine)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "normrepro test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("NORMREPRO_CONFIGS", raising=False)


def _execute(nb):
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    return nb


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(out) -> str:
    if out.output_type == "stream":
        return out.text
    return out.get("data", {}).get("text/plain", "")


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and 'EXPERIMENT = "demo"' in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"


def test_notebook_runs_on_smoke_results(smoke_results, kernel_env, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RESULTS", str(smoke_results))
    monkeypatch.setenv("NORMREPRO_SCALE", "smoke")
    nb = _execute(nbformat.read(NOTEBOOK, as_version=4))  # raises CellExecutionError on any failing cell
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(_text(o) for o in outputs)
    assert str(smoke_results / "demo-smoke") in text
    # the redrawn figure, the committed PNG shown beside it and the per-run view
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3
    # the per-arm table and the claims' gaps
    assert "final_test_acc per arm" in text
    table = text[text.index("final_test_acc per arm"):]
    assert "bn" in table and "none" in table and "one seed" in table
    # one smoke seed: the verdict cannot be decided (12 steps may not even lower the training loss)
    assert "bn_higher" in text and ("inconclusive" in text or "not testable here" in text)


def test_notebook_fails_loudly_without_results(tmp_path, kernel_env, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RESULTS", str(tmp_path / "no_results"))
    monkeypatch.delenv("NORMREPRO_SCALE", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = nb.cells[: [c.get("id") for c in nb.cells].index("find") + 1]  # up to the check
    with pytest.raises(nbclient.exceptions.CellExecutionError) as err:
        _execute(nb)
    assert "run `make demo` first" in str(err.value).lower()
