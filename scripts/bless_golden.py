"""(Re)write the golden regression files ``tests/golden/<case>.json`` from the code as it is now.

    python scripts/bless_golden.py              # every case
    python scripts/bless_golden.py mlp-bn-none  # only these cases
    python scripts/bless_golden.py --list       # the case names

This is the deliberate way to accept a change of numbers (docs/golden.md says when that is right): it
writes the fakes of the test suite into a temporary folder, runs each case through ``normrepro.train.run``
as ``tests/test_golden.py`` does, and says for each file whether it changed (and where first) or was new.
A refactor that should change no number must not need it: run ``pytest tests/test_golden.py`` instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

from golden_cases import (  # noqa: E402  (after the path setup)
    GOLDEN_DIR,
    all_cases,
    dumps,
    first_difference,
    golden_path,
    load,
    record_case,
)
from helpers import write_fake_cifar_png, write_fake_mnist, write_fake_ptb  # noqa: E402


def engine_environment(tmp: Path) -> None:
    """What tests/conftest.py's ``engine_env`` sets up: the fakes, a cache and run folders under ``tmp``."""
    data = tmp / "data"
    data.mkdir()
    write_fake_mnist(data)
    write_fake_cifar_png(data)
    write_fake_ptb(data)
    os.environ.update({"NORMREPRO_DATA": str(data), "NORMREPRO_CACHE": str(tmp / "cache"),
                       "NORMREPRO_RUNS": str(tmp / "runs"), "NORMREPRO_RESULTS": str(tmp / "results"),
                       "WANDB_MODE": "offline", "WANDB_SILENT": "true", "MPLBACKEND": "Agg"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args(argv)
    cases = all_cases()
    if args.list:
        print("\n".join(cases))
        return 0
    unknown = [c for c in args.cases if c not in cases]
    if unknown:
        sys.exit(f"error: unknown case(s) {', '.join(unknown)}; see --list for the {len(cases)} cases")
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="normrepro-golden-") as tmp:
        engine_environment(Path(tmp))
        for name in args.cases or cases:
            t0 = time.perf_counter()
            record = record_case(name, Path(tmp) / "runs" / name)
            path = golden_path(name)
            if path.exists():
                diff = first_difference(load(path), record)
                verdict = "unchanged" if diff is None else f"CHANGED: {diff}"
            else:
                verdict = "new"
            path.write_text(dumps(record), encoding="utf-8")
            print(f"{name}: {verdict} ({len(record['rows'])} rows, {time.perf_counter() - t0:.1f} s)")
    stale = sorted(p.stem for p in GOLDEN_DIR.glob("*.json") if p.stem not in cases)
    if stale:
        print(f"stale golden files (no such case any more; delete them): {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
