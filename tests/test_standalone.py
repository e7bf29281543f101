"""The repository stands on its own: no tracked file points to documents outside the checkout (the claim
list, design and stack notes live in docs/), and the five source documents are cited as [S0]-[S4], never
by their old file numbers ("seed" followed by a zero-padded number), which readers took for random seeds.

Random seeds stay as they are: `seed: 3`, `seed 0`, `per-seed`, `3 seeds`, `range(0,3)` never match,
because a source-document number is always three digits with two leading zeros (000-004).
`results/` is generated from the experiment files and is checked by re-rendering, not here.

The examples below are built with f-strings so that this file does not match its own patterns.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = ("results/",)  # generated reports: re-rendered from the (checked) experiment files

DOC = r"00[0-4]"  # the five source documents were files 000 ... 004
# "seed" or "seeds" before one or a list of document numbers, or document numbers alone in parentheses
# (see the examples in the tests below).
SOURCE_AS_SEED = re.compile(
    rf"\bseeds?\s+{DOC}\b|\(\s*{DOC}(?:\s*(?:,|/|and)\s*{DOC})*\s*\)", re.IGNORECASE
)
# Files outside the checkout. The datasets beside it (../shared/data, used by .ci/run) are data, not
# documents, and stay allowed. Case-sensitive: docs/claims.md is the repository's own file.
OUTSIDE_DOCUMENT = re.compile(
    r"\.\./shared(?!/data\b)|shared/[C]LAIMS|\bCLAIMS\.md|\bDESIGN\.md|\bSTACK\.md|\bDESIGN \d"
)


def offending_lines(root: Path, paths) -> list[str]:
    """``file:line: text`` for every line of the text files ``paths`` (relative to ``root``) that cites a
    source document as a seed or points to a document outside the repository. Binary files are skipped."""
    found = []
    for rel in paths:
        data = (root / rel).read_bytes()
        if b"\0" in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if SOURCE_AS_SEED.search(line) or OUTSIDE_DOCUMENT.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing to list")
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def _report(found: list[str]) -> str:
    for line in found:
        print(line)
    return f"{len(found)} line(s) cite a source document as a seed or point outside the repository " \
           "(use [S0]-[S4] and docs/claims.md, docs/references.md, docs/stack.md):\n" + "\n".join(found)


# ------------------------------------------------------------------ the patterns themselves
S0, S1, S2, S3 = "000", "001", "002", "003"
UP, MD, CL = "..", ".md", "CLAIMS"


@pytest.mark.parametrize("line", [
    f"Claim (seeds {S0}, {S2}; [BN] Sec. 3.3): BN(aWu) = BN(Wu)",
    f"paper: \"seed {S3}\"",
    f"Seed {S0}'s example: the same network function",
    f"seeds {S1} and {S3}",
    f"BN regularizes ({S0})",
    f"insensitive to the weight scale ({S1}, {S3})",
    f"see {UP}/shared/{CL}{MD}",
    f"the list in shared/{CL}",
    f"lists them in CLAIMS{MD}",
    f"where this departs from DESIGN{MD}",
    f"(2-3x per shared STACK{MD})",
    f"Separate generators (DESIGN {3})",
])
def test_patterns_catch_documents_cited_as_seeds_or_outside_the_repo(line):
    assert SOURCE_AS_SEED.search(line) or OUTSIDE_DOCUMENT.search(line)


@pytest.mark.parametrize("line", [
    "seed: 0", "seed 0 and seed 7", "seed=3", "per-seed differences", "3 seeds", "seed: range(0,3)",
    "lr: 0.001", "decay (0.001)", "seed 1000", "seed 0001", "[S0], [S2]; [BN] Sec. 3.3",
    "see docs/claims.md and docs/stack.md", f"NORMREPRO_DATA={UP}/shared/data", "a design note",
])
def test_patterns_leave_random_seeds_and_own_documents_alone(line):
    assert not SOURCE_AS_SEED.search(line) and not OUTSIDE_DOCUMENT.search(line)


def test_offending_lines_name_file_and_line_and_skip_binary_files(tmp_path):
    (tmp_path / "a.md").write_text(f"fine\nClaim (seed {S0}): x\nalso fine, seed 0\n")
    (tmp_path / "b.yaml").write_text(f"paper: \"see CLAIMS{MD}\"\n")
    (tmp_path / "c.png").write_bytes(b"\x89PNG\0" + f"seed {S0}".encode())
    (tmp_path / "d.bin").write_bytes(b"\xff\xfe" + f"seed {S0}".encode())
    found = offending_lines(tmp_path, ["a.md", "b.yaml", "c.png", "d.bin"])
    assert found == [f"a.md:2: Claim (seed {S0}): x", f"b.yaml:1: paper: \"see CLAIMS{MD}\""]


# ------------------------------------------------------------------ the repository
def test_no_tracked_file_cites_a_source_document_as_a_seed_or_points_outside_the_repo():
    files = [p for p in tracked_files() if not p.startswith(SKIPPED_DIRS)]
    assert files, "git ls-files listed nothing"
    found = offending_lines(ROOT, files)
    assert not found, _report(found)
