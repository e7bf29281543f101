"""The "Adding an experiment" recipe (docs/adding-an-experiment.md, linked from the README), followed word for
word: its example experiment file, dropped into a copy of configs/, runs with `python -m normrepro.train -m`
and reports with `python -m normrepro.analysis`, touching no other file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import CONFIGS, FAKE_VAL_SIZE, REPO

pytestmark = pytest.mark.integration


def readme_experiment_file() -> str:
    text = (REPO / "docs" / "adding-an-experiment.md").read_text(encoding="utf-8")
    section = text[text.index("# Adding an experiment"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return "\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines()) + "\n"


def test_the_readme_example_experiment_runs_and_reports(engine_env, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "experiment" / "my_claim.yaml").write_text(readme_experiment_file(), encoding="utf-8")
    env = {**os.environ, "NORMREPRO_CONFIGS": str(configs)}
    common = ["scale=smoke", f"data.val_size={FAKE_VAL_SIZE}"]
    subprocess.run([sys.executable, "-m", "normrepro.train", "-m", "experiment=my_claim", "threads=1", *common],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    out = subprocess.run([sys.executable, "-m", "normrepro.analysis", "my_claim", "--scale", "smoke",
                          f"data.val_size={FAKE_VAL_SIZE}"], env=env, check=True, capture_output=True, text=True,
                         cwd=tmp_path).stdout
    assert "my_claim/faster:" in out
    report = engine_env.results / "my_claim-smoke" / "REPORT.md"
    assert report.exists() and "faster" in report.read_text()
