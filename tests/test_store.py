"""The metrics store: a closed schema at the writer, NaN/inf that survive JSON, torn lines, truncation."""

from __future__ import annotations

import json
import math

import pytest

from normrepro.store import (
    METRICS,
    SPLITS,
    MetricsWriter,
    SchemaError,
    read_metrics,
    truncate_after,
    validate_row,
)


class Mirror:
    def __init__(self):
        self.rows, self.closed = [], False

    def log_row(self, row):
        self.rows.append(row)

    def close(self):
        self.closed = True


def test_writer_rows_round_trip_and_reach_the_mirrors(tmp_path):
    mirror = Mirror()
    writer = MetricsWriter(tmp_path / "m.jsonl", [mirror])
    writer.write(0, 0.0, "val", "acc", 0.5, bn_mode="population")
    writer.write(3, 0.123456789, "probe", "preact_p15", -1.25, layer="3", unit=0)
    writer.write(3, 0.123456789, "train", "grad_norm", 2.0, layer=None)  # None = no such field
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(lines) == 3  # flushed as written, before close
    writer.close()
    assert mirror.closed and len(mirror.rows) == 3
    assert json.loads(lines[1]) == {"step": 3, "epoch": 0.1235, "split": "probe", "metric": "preact_p15",
                                    "value": -1.25, "layer": "3", "unit": 0}
    assert "layer" not in json.loads(lines[2])
    frame = read_metrics(tmp_path / "m.jsonl")
    assert list(frame.columns) == ["step", "epoch", "split", "metric", "value", "layer", "unit", "bn_mode"]
    assert frame["value"].tolist() == [0.5, -1.25, 2.0]
    assert frame["bn_mode"].iloc[0] == "population" and frame["unit"].iloc[1] == 0


@pytest.mark.parametrize("split,metric,extra,message", [
    ("val", "accuracy", {}, "unknown metric 'accuracy'"),
    ("valid", "acc", {}, "unknown split 'valid'"),
    ("val", "acc", {"bn_mode": "running"}, "unknown bn_mode 'running'"),
    ("val", "acc", {"units": 3}, "unknown fields"),
])
def test_writer_rejects_rows_outside_the_schema(tmp_path, split, metric, extra, message):
    writer = MetricsWriter(tmp_path / "m.jsonl")
    with pytest.raises(SchemaError, match=message) as info:
        writer.write(1, 0.1, split, metric, 1.0, **extra)
    if "split" in message:
        assert all(s in str(info.value) for s in SPLITS)  # the valid names are listed
    writer.close()
    assert (tmp_path / "m.jsonl").read_text() == ""  # nothing written


def test_validate_row_requires_the_core_fields():
    with pytest.raises(SchemaError, match="lacks"):
        validate_row({"step": 0, "split": "val", "metric": "acc", "value": 1.0})
    assert validate_row({"step": 0, "epoch": 0, "split": "val", "metric": "acc", "value": 1.0})
    assert "acc" in METRICS and "loss" in METRICS


def test_nan_and_inf_round_trip(tmp_path):
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    for value in (float("nan"), float("inf"), float("-inf"), 1.5):
        writer.write(1, 0.0, "train", "loss", value)
    writer.close()
    for line in path.read_text().splitlines():  # strict JSON: no bare NaN / Infinity tokens
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    values = read_metrics(path)["value"].tolist()
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.5]


def test_torn_last_line_is_skipped_but_a_torn_middle_line_is_an_error(tmp_path):
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    writer.write(1, 0.0, "train", "loss", 1.0)
    writer.write(2, 0.0, "train", "loss", 0.5)
    writer.close()
    good = path.read_text()
    path.write_text(good + '{"step": 3, "epoch": 0.0, "spl')
    assert read_metrics(path)["step"].tolist() == [1, 2]
    lines = good.splitlines()
    path.write_text(lines[0] + "\n" + '{"step": 3, "ep' + "\n" + lines[1] + "\n")
    with pytest.raises(SchemaError, match=":2: not JSON"):
        read_metrics(path)


def test_reader_checks_the_schema(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"step": 0, "epoch": 0, "split": "val", "metric": "acc_typo", "value": 1}) + "\n")
    with pytest.raises(SchemaError, match="acc_typo"):
        read_metrics(path)


def test_truncate_after_drops_later_rows_and_torn_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    for step in (0, 3, 6, 6, 9, 12):
        writer.write(step, step / 8, "train", "loss", float(step))
    writer.close()
    with path.open("a") as fh:
        fh.write('{"step": 1')
    truncate_after(path, 6)
    assert read_metrics(path)["step"].tolist() == [0, 3, 6, 6]
    assert path.read_text().endswith("\n")
    truncate_after(path, -1)  # no checkpoint: start over
    assert path.read_text() == ""
    truncate_after(tmp_path / "missing.jsonl", 3)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists()


def test_appending_after_truncation_keeps_one_row_per_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0, "epoch": 0, "split": "val", "metric": "acc", "value": 0.1}\n{"step": 5, "ep')
    truncate_after(path, 0)
    writer = MetricsWriter(path)
    writer.write(1, 0.0, "val", "acc", 0.2)
    writer.close()
    assert read_metrics(path)["value"].tolist() == [0.1, 0.2]
