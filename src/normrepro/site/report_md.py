"""REPORT.md (as written by normrepro.analysis.report) taken apart: the description under the title, the
italic provenance lines (scale, jobs, compute, git), the ``## `` sections by heading, and the figures with
their captions. A section a report lacks (older reports have no deviations table) is simply absent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_ITALIC_LINE = re.compile(r"^\*(?!\*)(.+)\*$")


@dataclass
class Figure:
    src: str  # as the report links it, relative to the experiment's folder (figures/x.png)
    name: str
    caption: str = ""


@dataclass
class Report:
    title: str = ""
    description: str = ""
    provenance: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)

    def section(self, *names: str) -> str:
        """The first present section among ``names`` (matched case-insensitively by prefix)."""
        for name in names:
            for heading, body in self.sections.items():
                if heading.lower().startswith(name.lower()):
                    return body
        return ""


def parse_report(text: str) -> Report:
    report, heading, body = Report(), None, []
    head: list[str] = []
    for line in text.splitlines():
        if line.startswith("# ") and not report.title:
            report.title = line[2:].strip().strip("`")
        elif line.startswith("## "):
            if heading is not None:
                report.sections[heading] = "\n".join(body).strip()
            heading, body = line[3:].strip(), []
        elif heading is None:
            head.append(line)
        else:
            body.append(line)
    if heading is not None:
        report.sections[heading] = "\n".join(body).strip()
    report.provenance = [m.group(1) for line in head if (m := _ITALIC_LINE.match(line.strip()))]
    report.description = "\n".join(line for line in head if not _ITALIC_LINE.match(line.strip())).strip()
    report.figures = figures(report.section("Figures"))
    return report


def figures(section: str) -> list[Figure]:
    """``![name](figures/name.png)`` lines, each with the italic line that follows it as its caption."""
    found: list[Figure] = []
    for line in section.splitlines():
        line = line.strip()
        if m := _IMAGE.match(line):
            found.append(Figure(src=m.group(2), name=m.group(1)))
        elif found and not found[-1].caption and (m := _ITALIC_LINE.match(line)):
            found[-1].caption = m.group(1)
    return found


def without_table(section: str) -> str:
    """A section's text less its pipe tables (the verdict table is rebuilt from verdicts.csv)."""
    return "\n".join(line for line in section.splitlines() if not line.lstrip().startswith("|")).strip()


def read_report(path: Path) -> Report:
    return parse_report(path.read_text(encoding="utf-8")) if path.is_file() else Report()
