"""The Makefile never uses or installs into a venv that belongs to another checkout (one copied along with a
checkout, or linked from one): every target first asks the venv's python where it imports normrepro from,
and stops with one line naming the fix when that is not this checkout's src/. A fresh clone (no .venv yet)
and a venv without normrepro installed yet go on to `make venv`'s install.

Each case is a scratch checkout: this Makefile and pyproject.toml, a stub src/normrepro, and a .venv/bin/python that runs this
interpreter with the source tree the case needs in front of its path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def checkout(root: Path) -> Path:
    (root / "src" / "normrepro").mkdir(parents=True)
    (root / "src" / "normrepro" / "__init__.py").write_text("")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    return root


def venv_python(root: Path, script: str) -> None:
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)


def make(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *args], cwd=root, capture_output=True, text=True, timeout=60)


def test_a_venv_of_another_checkout_stops_every_target_with_one_line(tmp_path):
    other = checkout(tmp_path / "other")
    here = checkout(tmp_path / "copy")
    venv_python(here, f'PYTHONPATH={other / "src"} exec {sys.executable} "$@"')  # as a copied .venv does
    for target in ("venv-check", "venv", "test"):
        proc = make(here, "-n", target)  # -n: nothing would run, not even the install
        assert proc.returncode != 0 and "pip install" not in proc.stdout
        (line,) = proc.stderr.strip().splitlines()
        assert f"imports normrepro from {other / 'src'}, not from this checkout's {here / 'src'}" in line
        assert "rm -rf .venv && make venv" in line


def test_this_checkouts_venv_and_a_fresh_clone_go_on(tmp_path):
    fresh = checkout(tmp_path / "fresh")
    assert make(fresh, "venv-check").returncode == 0  # no .venv yet: make venv creates it
    proc = make(fresh, "-n", "venv")
    assert proc.returncode == 0 and "-m venv .venv" in proc.stdout and "pip install --quiet -e '.[dev]'" in proc.stdout
    own = checkout(tmp_path / "own")
    venv_python(own, f'PYTHONPATH={own / "src"} exec {sys.executable} "$@"')
    assert make(own, "venv-check").returncode == 0
    empty = checkout(tmp_path / "empty")
    venv_python(empty, f'PYTHONPATH=/nonexistent PYTHONNOUSERSITE=1 exec {sys.executable} -S "$@"')
    assert make(empty, "venv-check").returncode == 0  # normrepro not installed yet: nothing to compare


def test_a_venv_that_does_not_run_names_the_fix(tmp_path):
    here = checkout(tmp_path / "moved")
    venv_python(here, "exit 127")  # its interpreter is gone (a venv copied from another machine)
    proc = make(here, "venv-check")
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "does not run" in line and "rm -rf .venv && make venv" in line
    proc = make(here, "venv-check", f"PY={here / '.venv' / 'bin' / 'python'}")
    assert "drop PY=" in proc.stderr  # another interpreter named on the command line: not this .venv to delete
