"""Mirrors the metrics rows to Weights & Biases: one wandb run per job, grouped by experiment.

Offline unless ``WANDB_MODE`` says otherwise (set in the environment before wandb starts, so no background
telemetry lookup happens; see docs/stack.md). ``make sync`` uploads offline runs later. Keys are
``<split>/<metric>[/<layer>][/u<unit>][/<bn_mode>]``; rows of one step go out in one ``log`` call.
"""

from __future__ import annotations

import os
from pathlib import Path


class WandbMirror:
    def __init__(self, run_dir: Path, name: str, group: str, config: dict, project: str,
                 entity: str | None, mode: str, resume_id: str | None = None):
        os.environ.setdefault("WANDB_MODE", mode)
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb  # imported here: runs without logger=wandb never pay for it

        self._wandb = wandb
        self.run = wandb.init(project=project, entity=entity, group=group, name=name, config=config,
                              dir=str(run_dir), id=resume_id, resume="allow" if resume_id else None,
                              reinit="finish_previous")
        self._step, self._pending = None, {}

    @property
    def run_id(self) -> str:
        return self.run.id

    def log_row(self, row: dict) -> None:
        if self._step is not None and row["step"] != self._step:
            self._flush()
        self._step = row["step"]
        key = f"{row['split']}/{row['metric']}"
        if row.get("layer"):
            key += f"/{row['layer']}"
        if "unit" in row:
            key += f"/u{row['unit']}"
        if "bn_mode" in row:
            key += f"/{row['bn_mode']}"
        self._pending[key] = row["value"]

    def _flush(self) -> None:
        if self._pending:
            self.run.log(self._pending, step=self._step)
        self._pending = {}

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)

    def close(self) -> None:
        self._flush()
        self.run.finish()
