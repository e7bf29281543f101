"""What a result was made with: git SHA, library versions, device."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("" where there is none, e.g. off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_fingerprint() -> str:
    """The CPU as far as floating-point results go: the model name, the vendor's family/model/stepping and
    cache size from ``/proc/cpuinfo`` (virtual machines often report only a generic name such as "AMD EPYC"
    for different processors, which round differently), and the vector ISA torch dispatches to."""
    import torch

    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "model", "stepping", "cache size") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break  # the first processor's block is enough
    except OSError:
        pass
    detail = ", ".join(f"{k} {v}" for k, v in fields.items())
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{cpu_model()} ({detail + '; ' if detail else ''}torch {isa})"


@functools.cache
def git_sha() -> str:
    """HEAD's SHA, with ``-dirty`` when tracked files differ from it; ``unknown`` outside a checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "configs"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: torch.device, threads: int) -> dict:
    return {"git_sha": git_sha(), "torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "device_name": _device_name(device), "threads": threads,
            "machine": platform.machine()}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
