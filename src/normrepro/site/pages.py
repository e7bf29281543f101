"""The site's two kinds of page as HTML text: the index (every claim, filterable) and one page per
experiment. Every piece of text from results/ goes through ``html.escape`` (directly or via markup)."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from string import Template
from urllib.parse import quote

from normrepro.analysis.claims import OUTCOMES
from normrepro.site import markup
from normrepro.site.experiments import NO_SOURCE, Experiment, arms, interval, number, slug, sources, text
from normrepro.site.report_md import without_table

TEMPLATES = files("normrepro.site") / "templates"


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def page(title: str, body: str, root: str = "", script: str = "") -> str:
    """A whole page; ``root`` is the relative way up to the site's top folder ('' or '../')."""
    return Template(template("page.html")).substitute(title=escape(title), body=body, root=root,
                                                      script=f"<script>\n{script}</script>" if script else "")


def outcome_badge(verdict: str) -> str:
    return f'<span class="outcome {slug(verdict)}">{escape(verdict)}</span>'


def experiment_href(exp_id: str, claim_id: str | None = None) -> str:
    href = f"{quote(exp_id)}/index.html"
    return escape(href + (f"#claim-{quote(claim_id)}" if claim_id else ""))


def _options(values: dict[str, int], label: str, total: int) -> str:
    opts = [f'<option value="">all {label} ({total})</option>']
    opts += [f'<option value="{escape(v)}">{escape(v)} ({n})</option>' for v, n in values.items()]
    return "".join(opts)


def _claim_row(exp: Experiment, r) -> str:
    tags = sources(r.paper)
    return (f'<tr data-outcome="{escape(r.verdict)}" data-sources="{escape(" ".join(tags))}">'
            f'<td><a href="{experiment_href(exp.id)}">{escape(exp.id)}</a></td>'
            f'<td><a href="{experiment_href(exp.id, r.id)}">{escape(r.id)}</a>'
            f'<span class="claim-text">{escape(text(r.text))}</span></td>'
            f"<td>{outcome_badge(r.verdict)}</td><td class=\"num\">{escape(interval(r))}</td>"
            f'<td class="num">{escape(arms(r))}</td><td>{escape(text(r.paper) or "–")}</td></tr>')


def _summary_table(experiments: list[Experiment]) -> str:
    head = "".join(f"<th>{escape(o)}</th>" for o in OUTCOMES)
    rows = []
    for exp in experiments:
        counts = exp.counts()
        cells = "".join(f'<td class="num">{counts[o] if len(exp.verdicts) else "–"}</td>' for o in OUTCOMES)
        rows.append(f'<tr><td><a href="{experiment_href(exp.id)}">{escape(exp.id)}</a></td>'
                    f'<td class="num">{len(exp.verdicts)}</td>{cells}</tr>')
    return (f'<table id="experiments"><thead><tr><th>experiment</th><th>claims</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def index_page(experiments: list[Experiment]) -> str:
    rows, outcomes, tags = [], dict.fromkeys(OUTCOMES, 0), {}
    for exp in experiments:
        for r in exp.verdicts.itertuples():
            rows.append(_claim_row(exp, r))
            outcomes[r.verdict] = outcomes.get(r.verdict, 0) + 1
            for tag in sources(r.paper):
                tags[tag] = tags.get(tag, 0) + 1
    tags = dict(sorted(tags.items(), key=lambda kv: (kv[0] == NO_SOURCE, kv[0])))
    badges = "".join(f"{outcome_badge(o)} {n}" for o, n in outcomes.items())
    body = f"""<h1>Batch Normalization claims, reproduced by running them</h1>
<p>{len(rows)} claims from {len(experiments)} experiments. Each claim's effect is the mean over seeds of a
per-seed number (a - b) with its 95% confidence interval; deciding a claim either way takes at least 5 seeds
per arm. Click a claim for its experiment: setup, deviations, the paper's number beside ours, figures.</p>
<div class="counts">{badges}</div>
<div class="filters">
<label>Outcome <select id="outcome-filter">{_options(outcomes, "outcomes", len(rows))}</select></label>
<label>Paper / source <select id="source-filter">{_options(tags, "sources", len(rows))}</select></label>
<span id="shown">{len(rows)} claims</span>
</div>
<table id="claims"><thead><tr><th>experiment</th><th>claim</th><th>outcome</th><th>effect [95% CI]</th>
<th>n (a/b)</th><th>paper</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<h2>Experiments</h2>
{_summary_table(experiments)}"""
    return page("normrepro results", body, script=template("filter.js"))


def _verdict_table(exp: Experiment) -> str:
    if not len(exp.verdicts):
        return '<p class="muted">No claims: a supporting sweep.</p>'
    rows = []
    for r in exp.verdicts.itertuples():
        rows.append(f'<tr id="claim-{escape(quote(r.id))}"><td><strong>{escape(r.id)}</strong>'
                    f'<span class="claim-text">{escape(text(r.text))}</span> <code>{escape(text(r.metric))}</code></td>'
                    f"<td><code>{escape(text(r.expect))}</code></td><td>{outcome_badge(r.verdict)}</td>"
                    f'<td class="num">{escape(interval(r))}</td><td>{escape(text(r.paper) or "–")}</td>'
                    f'<td class="num">{escape(number(r.a))}</td><td class="num">{escape(number(r.b))}</td>'
                    f'<td class="num">{escape(arms(r))}</td><td class="num">{escape(number(r.half_width))}</td>'
                    f"<td>{escape(text(r.method))}</td><td>{escape(text(r.reason) or '–')}</td></tr>")
    head = ("<th>claim</th><th>expected</th><th>outcome</th><th>ours: effect [95% CI]</th><th>paper</th>"
            "<th>a</th><th>b</th><th>n (a/b)</th><th>± (MDE)</th><th>interval</th><th>why</th>")
    return f'<table id="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _section(title: str, body_md: str, missing: str = "") -> str:
    if not body_md:
        return f"<h2>{escape(title)}</h2>\n<p class=\"muted\">{escape(missing)}</p>" if missing else ""
    return f"<h2>{escape(title)}</h2>\n{markup.blocks(body_md)}"


def _figures(exp: Experiment) -> str:
    if not exp.figures:
        return '<p class="muted">No figures.</p>'
    return "\n".join(f'<figure><img src="{escape(quote(f.src))}" alt="{escape(f.name)}">'
                     f"<figcaption>{markup.inline(f.caption or f.name)}</figcaption></figure>"
                     for f in exp.figures)


DATA_FILES = {"verdicts.csv": "one row per claim", "summary.csv": "one row per run"}


def _data_links(exp: Experiment) -> str:
    links = [f'<a href="{name}">{name}</a> ({what})' for name, what in DATA_FILES.items()
             if (exp.folder / name).is_file()]
    return (f"<p>{' · '.join(links)}; every logged row is in <code>metrics.csv.gz</code> beside REPORT.md in "
            f"<code>results/{escape(exp.id)}/</code>.</p>")


SHOWN = ("verdicts", "setup", "deviations", "notes", "figures", "files")


def experiment_page(exp: Experiment) -> str:
    rep = exp.report
    notes = without_table(rep.section("Verdicts")).replace("(no claims evaluated)", "").strip()
    others = [(h, b) for h, b in rep.sections.items() if not h.lower().startswith(SHOWN)]
    provenance = "".join(f'<p class="provenance">{markup.inline(p)}</p>' for p in rep.provenance)
    body = "\n".join([
        '<p><a href="../index.html">← all claims</a></p>',
        f"<h1><code>{escape(exp.id)}</code></h1>",
        markup.blocks(rep.description) or '<p class="muted">REPORT.md has no description.</p>',
        provenance,
        "<h2>Verdicts</h2>", _verdict_table(exp), f'<div class="rule">{markup.blocks(notes)}</div>',
        _section("Setup", rep.section("Setup"), "REPORT.md has no setup section."),
        _section("Deviations from the paper", rep.section("Deviations"),
                 f"This REPORT.md has no deviations section (it was written before reports had one); "
                 f"configs/experiment/{exp.id}.yaml may declare some."),
        _section("Notes", rep.section("Notes")),
        *(_section(h, b) for h, b in others),
        "<h2>Figures</h2>", _figures(exp),
        "<h2>Data</h2>", _data_links(exp),
    ])
    return page(f"{exp.id} · normrepro results", body, root="../")
