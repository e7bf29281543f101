"""``python -m normrepro.site [--results results] [--out site]``: build the static results site."""

from __future__ import annotations

import argparse
from pathlib import Path

from normrepro.site.build import build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m normrepro.site", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"), help="the results folder to read")
    parser.add_argument("--out", type=Path, default=Path("site"), help="the folder to (re)write")
    args = parser.parse_args(argv)
    pages = build_site(args.results, args.out)
    print(f"wrote {len(pages)} pages to {args.out}/ (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
