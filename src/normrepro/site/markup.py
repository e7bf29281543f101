"""The small Markdown subset REPORT.md uses, as HTML: every character of the text is escaped first
(``html.escape``), then `code`, **bold**, *italic* and pipe tables are turned into tags. Raw HTML in a
report therefore shows as text; no Markdown library (which passes raw HTML through) is involved."""

from __future__ import annotations

import html
import re

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def inline(text: str) -> str:
    """One line or cell of Markdown as escaped HTML (code spans are not formatted inside)."""
    parts = _CODE.split(str(text))
    out = []
    for i, part in enumerate(parts):
        escaped = html.escape(part.replace("\\|", "|"))
        if i % 2:
            out.append(f"<code>{escaped}</code>")
        else:
            out.append(_ITALIC.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", escaped)))
    return "".join(out)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(row.strip().strip("|"))]


def _table(rows: list[str]) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    th = "".join(f"<th>{inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f'<table class="md"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def _is_table(block: list[str]) -> bool:
    return len(block) >= 2 and block[0].lstrip().startswith("|") and set(block[1].strip()) <= set("|-: ")


def blocks(text: str) -> str:
    """Paragraphs (blank-line separated) and pipe tables as HTML; image lines are left to the caller."""
    out, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            block.append(line)
            continue
        if block:
            out.append(_table(block) if _is_table(block) else f"<p>{inline(' '.join(block))}</p>")
        block = []
    return "\n".join(out)
