"""Download MNIST and CIFAR-10 with torchvision into the data root (`make data`).

Writes `<root>/MNIST/raw/*` and `<root>/cifar-10-batches-py/*`, the layouts that
normrepro.data reads. Files already present (and matching torchvision's MD5s) are not fetched
again. Without a network it prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        default=os.environ.get("NORMREPRO_DATA", "data"),
        help="data folder (default: $NORMREPRO_DATA, else ./data)",
    )
    root = Path(parser.parse_args().root)

    from torchvision import datasets  # imported late so --help stays fast

    for label, dataset in (("MNIST", datasets.MNIST), ("CIFAR-10", datasets.CIFAR10)):
        chatter = io.StringIO()
        try:
            # torchvision prints every failed mirror attempt to stdout; keep only our summary line.
            with contextlib.redirect_stdout(chatter):
                for train in (True, False):
                    dataset(root=str(root), train=train, download=True)
        except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
            reason = " ".join(str(err).split()) or type(err).__name__
            print(
                f"error: could not download {label} into {root} ({reason}); no network? "
                "run this on a connected machine and copy the folder, or point NORMREPRO_DATA at an existing copy",
                file=sys.stderr,
            )
            return 1
        print(f"{label}: ok in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
