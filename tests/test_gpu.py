"""The CUDA path (``device=cuda``), run where a GPU is lent (``scripts/gpu_check.sh``; deselected elsewhere).

- Every model case of the golden set (each architecture x norm kind x weight parameterization, each
  recurrent cell) trained on the device agrees with its CPU golden under the goldens' portable rule: the
  structure in full (rows, parameter count, status), the values up to step 1 at rtol 1e-3 (TF32 off, so the
  device computes in float32 as the CPU did).
- A run killed after its checkpoint and resumed on the device ends where an uninterrupted one ends.
- bf16 autocast runs end to end on the device.

``NORMREPRO_TEST_DEVICE=cpu pytest -m gpu tests/test_gpu.py`` runs the same tests on the CPU: a check of the
tests themselves where no GPU is lent. ``torch.nn.SyncBatchNorm`` needs two GPUs (two NCCL ranks cannot
share one) and is not tested here.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from golden_cases import first_difference, golden_path, load, model_cases, record_case
from helpers import comparable, read_rows
from normrepro.train import run
from test_resume import interrupted_then_resumed

DEVICE = os.environ.get("NORMREPRO_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.integration,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                 reason="no CUDA device")]


@pytest.fixture(autouse=True)
def float32_on_the_device():
    """TF32 off: the comparison with the CPU goldens is of float32 with float32."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("case", sorted(model_cases()))
def test_case_on_the_device_matches_its_cpu_golden(engine_env, case):
    expected = load(golden_path(case))
    actual = record_case(case, engine_env.tmp / case, extra=(f"device={DEVICE}",))
    if DEVICE != "cpu":
        actual["cpu"] = f"{DEVICE} ({torch.cuda.get_device_name()})"  # another platform: the portable rule
    difference = first_difference(expected, actual)
    assert difference is None, f"{case} on {DEVICE}: {difference}"


def test_resume_on_the_device_matches_uninterrupted(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn", "optim.momentum=0.9", f"device={DEVICE}")
    run(cfg, engine_env.tmp / "reference", "ref")
    run_dir = interrupted_then_resumed(engine_env, monkeypatch, cfg, step=9)
    assert run(cfg, run_dir, "resumed")["status"] == "done"
    ours, reference = comparable(read_rows(run_dir)), comparable(read_rows(engine_env.tmp / "reference"))
    assert [(r["step"], r["split"], r["metric"]) for r in ours] == \
        [(r["step"], r["split"], r["metric"]) for r in reference]
    for a, b in zip(ours, reference):
        assert math.isclose(a["value"], b["value"], rel_tol=1e-6, abs_tol=1e-8), (a, b)


def test_bf16_runs_on_the_device(engine_env):
    summary = run(engine_env.cfg("norm=bn", "train.precision=bf16", f"device={DEVICE}"), engine_env.tmp / "bf16",
                  "bf16")
    assert summary["status"] == "done"
