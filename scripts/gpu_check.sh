#!/usr/bin/env bash
# The GPU check, for a machine lent with a CUDA device (docs/benchmarks.md): one script, under 8 minutes.
#   1. the GPU-marked tests (tests/test_gpu.py: every golden model case on the device vs its CPU golden,
#      resume on the device, bf16 on the device);
#   2. the training-loop benchmark on the device (loop vs bare step, MLP and CNN, random tensors shaped like
#      the data sets, since the datasets are not on that machine);
# all of it written to benchmarks/gpu_results.md ($OUT/gpu_results.md as well when $OUT is set).
# Usage: scripts/gpu_check.sh   (from the repository root, with .venv built: make venv)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=benchmarks/gpu_results.md
export WANDB_MODE=disabled PYTHONPATH=src
{
  echo "# GPU check (scripts/gpu_check.sh)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M') UTC; git $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "- device: $($PY -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device")')"
  echo
  echo "## GPU-marked tests"
  echo
  echo '```'
  timeout 300 $PY -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider 2>&1 | tail -15
  echo "exit status: ${PIPESTATUS[0]}"
  echo '```'
  echo
  echo "## Training loop on the device (random tensors)"
  echo
  timeout 150 $PY benchmarks/loop_throughput.py --device cuda --data synthetic --no-write 2>/dev/null \
    | sed -n '/^| workload/,/^$/p' || echo "(the loop benchmark failed or timed out)"
} > "$out" 2>&1
cat "$out"
if [ -n "${OUT:-}" ]; then cp "$out" "$OUT/"; fi
