"""Rewrite the verdict block of the repository's README.md (between ``<!-- verdicts:start -->`` and
``<!-- verdicts:end -->``) from results/*/verdicts.csv: the outcomes counted, then one row per claim (claim,
source, the paper's number, our effect with its 95% interval and seeds, the outcome, a link to its
REPORT.md). The analysis never touches README.md; this script is the one, explicit, way to refresh it.

    python scripts/update_readme_verdicts.py [--readme README.md] [--results results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normrepro.analysis.readme import update_readme_block
from normrepro.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    args = parser.parse_args(argv)
    if not args.readme.is_file():
        print(f"error: {args.readme} does not exist; pass --readme <file>", file=sys.stderr)
        return 2
    try:
        changed = update_readme_block(args.readme, args.results)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{'updated' if changed else 'unchanged'}: {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
