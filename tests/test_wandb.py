"""logger=wandb mirrors the metrics rows into an offline wandb run inside the run directory (no network)."""

from __future__ import annotations

import json
import time

import pytest

from helpers import evaluated, read_rows, read_wandb_records
from normrepro.train import run

pytest.importorskip("wandb")


def _records_when_complete(path, timeout_s: float = 10.0):
    """wandb's service process writes the log: give it a moment to write the exit record."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = read_wandb_records(path)
            if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
                return records
        except Exception:  # a record being written
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_wandb_offline_mirror(engine_env):
    run_dir = engine_env.tmp / "run"
    summary = run(engine_env.cfg("logger=wandb", "norm=bn"), run_dir, "wandb-smoke")
    assert summary["status"] == "done" and (run_dir / "DONE").exists()

    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list((run_dir / "wandb").iterdir())
    logs = list(offline[0].glob("*.wandb"))
    assert len(logs) == 1
    records = _records_when_complete(logs[0])
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds.count("run") == 1 and "exit" in kinds  # finished cleanly (wandb.finish ran)
    assert next(r for r in records if r.WhichOneof("record_type") == "exit").exit.exit_code == 0

    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run_record.display_name == "wandb-smoke" and run_record.project == "normrepro"
    assert run_record.run_group == "adhoc"
    config = {item.key: json.loads(item.value_json) for item in run_record.config.update}
    config = {k: v["value"] if isinstance(v, dict) and set(v) == {"value"} else v for k, v in config.items()}
    assert config["norm"]["kind"] == "bn" and config["train"]["steps"] == 12  # the resolved config
    assert config["data"]["root"] == str(engine_env.data)

    # one history row per logged step, keyed <split>/<metric>[/<layer>][/u<unit>][/<bn_mode>]
    history = []
    for r in records:
        if r.WhichOneof("record_type") == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
    assert [h["_step"] for h in history] == [0, 3, 6, 9, 12]
    rows = read_rows(run_dir)
    last = {(r["split"], r["metric"], r.get("layer"), r.get("unit")): r["value"] for r in rows if r["step"] == 12}
    final = history[-1]
    assert final["test/acc/population"] == last[("test", "acc", None, None)] == evaluated(run_dir)["test/acc"]
    assert final["train/loss"] == last[("train", "loss", None, None)]
    assert final["probe/preact_p50/3/u1"] == last[("probe", "preact_p50", "3", 1)]
    assert final["train/grad_norm/head"] == last[("train", "grad_norm", "head", None)]
    n_keys = len([k for k in final if not k.startswith("_")])
    assert n_keys == len(last)  # every row of the step, nothing else

    summaries = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summaries.update({i.key: json.loads(i.value_json) for i in r.summary.update if i.key})
    assert summaries["status"] == "done" and summaries["val/acc"] == evaluated(run_dir)["val/acc"]
