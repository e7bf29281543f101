"""Deterministic run directories: skip finished jobs, refuse to mix configs, checkpoint and resume.

``runs/<experiment>/<scale>/<override_dirname>/`` holds ``run_config.yaml`` (the resolved config that
determines the result), ``metrics.jsonl``, ``summary.json``, ``checkpoint.pt`` and, written last, ``DONE``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from normrepro.config import result_config
from normrepro.errors import RunDirConflict


class RunDir:
    def __init__(self, path: Path, cfg: DictConfig):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = result_config(cfg)
        self.config_file = self.path / "run_config.yaml"
        self.metrics_file = self.path / "metrics.jsonl"
        self.summary_file = self.path / "summary.json"
        self.checkpoint_file = self.path / "checkpoint.pt"
        self.done_file = self.path / "DONE"

    def claim(self) -> None:
        """Record this run's config, or check it equals the one already recorded here."""
        if self.config_file.exists():
            old = OmegaConf.to_container(OmegaConf.load(self.config_file))
            diff = sorted(_diff_keys(old, self.config))
            if diff:
                raise RunDirConflict(
                    f"{self.path} holds a run with a different config (keys {', '.join(diff[:6])}); "
                    f"delete that directory or choose another paths.runs")
        else:
            OmegaConf.save(OmegaConf.create(self.config), self.config_file)

    @property
    def done(self) -> bool:
        return self.done_file.exists()

    def save_checkpoint(self, state: dict) -> None:
        tmp = self.checkpoint_file.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_file)  # atomic: a kill mid-save leaves the previous checkpoint

    def load_checkpoint(self) -> dict | None:
        if not self.checkpoint_file.exists():
            return None
        return torch.load(self.checkpoint_file, map_location="cpu", weights_only=False)

    def finish(self, summary: dict) -> None:
        self.summary_file.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        self.checkpoint_file.unlink(missing_ok=True)  # finished runs keep metrics, not weights
        self.done_file.write_text(summary.get("status", "done") + "\n", encoding="utf-8")

    def read_summary(self) -> dict:
        return json.loads(self.summary_file.read_text(encoding="utf-8"))


def _diff_keys(old, new, prefix=""):
    """Keys whose values differ. A key only the new config has is a schema addition whose default keeps the
    old behaviour (the rule for adding options), so runs made before it was added stay valid."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            if k in new:
                yield from _diff_keys(old[k], new[k], f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"
    elif old != new:
        yield prefix.rstrip(".")
