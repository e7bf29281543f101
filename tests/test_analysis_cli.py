"""The analysis command: re-judging from committed frames (``--from-results``), writing results/<id>/ whole or
not at all, leaving the repository's README.md and (at other scales) results/README.md alone, and turning a
user's mistake into one line on stderr with exit status 2.

Everything runs on a tiny fabricated results folder of the demo experiment (5 seeds per arm): no runs/.
"""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from normrepro.analysis import cli
from normrepro.analysis.claims import ClaimSpecError
from normrepro.analysis.readme import (
    README_END,
    README_START,
    ReadmeMarkersMissing,
    effect_with_interval,
    split_paper,
    update_readme_block,
)
from normrepro.plan import plan_jobs

REPO = Path(__file__).resolve().parents[1]
SEEDS = ["seed=range(0,5)"]  # the demo grid with 5 seeds per arm: enough to decide


def fabricate(folder: Path, scale: str = "cpu", shift: float = 0.0) -> None:
    """summary.csv and metrics.csv.gz of the demo's planned runs, as the analysis writes them; the derived
    column steps_to_90 holds a stale value (999) that re-judging must replace."""
    folder.mkdir(parents=True)
    runs, metrics = [], []
    for job in plan_jobs("demo", scale, SEEDS):
        kind, seed = job.cfg.norm.kind, job.cfg.seed
        final = (0.95 + 0.002 * (seed % 3) if kind == "bn" else 0.80) + 0.005 * seed - shift
        runs.append({"seed": seed, "norm.kind": kind, "run": job.run_dir.name, "diverged": 0.0, "status": "done",
                     "steps_done": 300, "wall_time_s": 2.0, "git_sha": "0123456789abcdef", "device": "cpu",
                     "final_test_acc": final, "steps_to_90": 999.0, "steps_to_90_reached": False})
        for step in (0, 100, 200, 300):
            val = min(final, 0.5 + step * (0.004 if kind == "bn" else 0.001))
            metrics += [{"step": step, "split": "val", "metric": "acc", "value": val},
                        {"step": step, "split": "test", "metric": "acc", "value": val},
                        {"step": step, "split": "train", "metric": "loss", "value": 2.3 - step / 200}]
            for row in metrics[-3:]:
                row.update(run=job.run_dir.name, seed=seed, **{"norm.kind": kind})
    pd.DataFrame(runs).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(metrics).to_csv(folder / "metrics.csv.gz", index=False)


@pytest.fixture
def results(tmp_path) -> Path:
    fabricate(tmp_path / "results" / "demo")
    return tmp_path / "results"


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------- --from-results
def test_rejudging_from_committed_frames(results, capsys):
    out = cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    assert out == results / "demo"
    runs = pd.read_csv(out / "summary.csv")
    assert len(runs) == 10 and set(runs["steps_to_90"]) == {100.0, 1500.0}  # recomputed (1500: the budget), not 999
    assert runs.columns.tolist().count("steps_to_90") == 1
    verdicts = pd.read_csv(out / "verdicts.csv").set_index("id")
    assert verdicts.loc["bn_higher", "verdict"] == "reproduced" and verdicts.loc["bn_faster", "verdict"] == "reproduced"
    assert verdicts.loc["bn_higher", "method"] == "paired t" and verdicts.loc["bn_higher", "n_a"] == 5
    report = (out / "REPORT.md").read_text()
    assert "*Re-judged at git " in report and "of runs made at git 0123456789ab" in report
    assert "by `python -m normrepro.analysis demo --from-results`" in report
    assert "| paired t |" in report and "not testable here" in report  # the method column and the rule
    assert (out / "figures" / "test_accuracy.png").stat().st_size > 5000
    index = (results / "README.md").read_text()
    assert "| [`demo`](demo/REPORT.md) | 2 | 2 | 0 | 0 | 0 |" in index
    assert "demo/bn_higher: reproduced" in capsys.readouterr().out
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_rejudging_from_another_folder_and_its_errors(results, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    out = cli.analyse("demo", "cpu", SEEDS, results_root=elsewhere, from_results=results / "demo")
    assert out == elsewhere / "demo" and (out / "REPORT.md").is_file()
    with pytest.raises(cli.UserError, match="has no summary.csv or metrics.csv.gz"):
        cli.analyse("demo", "cpu", SEEDS, results_root=elsewhere, from_results=tmp_path / "empty")
    # frames of 5 seeds, a plan of 3: the grid changed since, re-judging would be against another plan
    with pytest.raises(cli.UserError, match=r"holds 4 run\(s\) the current plan does not"):
        cli.analyse("demo", "cpu", ["seed=range(0,3)"], results_root=elsewhere, from_results=results / "demo")


# ------------------------------------------------------------------------------------ atomic results
def test_a_failing_plot_leaves_the_old_results_intact(results, tmp_path, monkeypatch):
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    before = snapshot(results / "demo")
    index_before = (results / "README.md").read_text()
    fabricate(tmp_path / "newer", shift=0.1)  # other numbers: a frame written in place would show

    def broken(*_args, **_kwargs):
        raise RuntimeError("the plot broke")

    monkeypatch.setattr(cli, "save_figure", broken)
    with pytest.raises(RuntimeError, match="the plot broke"):
        cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=tmp_path / "newer")
    assert snapshot(results / "demo") == before
    assert (results / "README.md").read_text() == index_before
    assert sorted(p.name for p in results.iterdir()) == ["README.md", "demo"]  # the staging folder is gone


def test_an_interrupt_while_writing_leaves_the_old_results_intact(results, monkeypatch):
    before = snapshot(results / "demo")
    monkeypatch.setattr(cli, "write_report", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    assert snapshot(results / "demo") == before and sorted(p.name for p in results.iterdir()) == ["demo"]


def test_staged_dir_replaces_the_folder_whole(tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "stale.png").write_text("from a plot since removed")
    with cli.staged_dir(out) as staging:
        (staging / "REPORT.md").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["REPORT.md"] and sorted(tmp_path.iterdir()) == [out]
    assert out.stat().st_mode & 0o755 == 0o755  # readable like any folder, not mkdtemp's 0700


# --------------------------------------------------------------------------- what other scales write
def test_other_scales_write_only_their_own_folder(results):
    """`make reproduce-demo SCALE=smoke` (or full) beside committed cpu results: results/demo/ and
    results/README.md stay byte for byte (none is made), the repository's README.md too, and the new folders
    are ones .gitignore keeps out of git, so git status stays clean."""
    readme = (REPO / "README.md").read_bytes()

    def others_after(scale: str) -> dict:
        fabricate(results / f"demo-{scale}", scale)
        out = cli.analyse("demo", scale, SEEDS, results_root=results, from_results=True)
        assert out == results / f"demo-{scale}" and (out / "REPORT.md").is_file()
        return {k: v for k, v in snapshot(results).items() if k.parts[0] != out.name}

    cpu_frames = snapshot(results)
    assert others_after("smoke") == cpu_frames  # and no results/README.md: other scales are never indexed
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    committed = snapshot(results)  # now with the index
    assert others_after("full") == committed
    assert sorted(p.name for p in results.iterdir()) == ["README.md", "demo", "demo-full", "demo-smoke"]
    assert (REPO / "README.md").read_bytes() == readme
    if (REPO / ".git").exists():
        def ignored(path: str) -> bool:
            return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0

        assert ignored("results/demo-smoke/REPORT.md") and ignored("results/demo-full/figures/x.png")
        assert not ignored("results/demo/REPORT.md")  # the cpu results are committed


def test_the_index_skips_other_scales_and_staging_folders(results):
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    verdicts = (results / "demo" / "verdicts.csv").read_bytes()
    for other in ("demo-smoke", "demo-full", ".demo.new-x1y2"):
        (results / other).mkdir()
        (results / other / "verdicts.csv").write_bytes(verdicts)
    index = cli.write_index(results).read_text()
    assert "[`demo`](demo/REPORT.md)" in index
    assert "demo-smoke" not in index and "demo-full" not in index and ".demo.new" not in index


# ----------------------------------------------------------------------------------- README's block
def test_the_readme_block_is_rewritten_only_on_request(results, tmp_path):
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n{README_START}\nold table\n{README_END}\n\nmore text\n")
    assert update_readme_block(readme, results)
    text = readme.read_text()
    assert "2 claims in 1 experiment: 2 reproduced, 0 not reproduced, 0 inconclusive, 0 not testable here." in text
    assert ("| [`demo`](results/demo/REPORT.md) | BN reaches 90% validation accuracy in… | - | - | "
            "-1400 [-1400, -1400] | 5/5 | reproduced |") in text
    assert "|  | BN ends with higher test accuracy | - | - | +0.1516 [0.1495, 0.1537] | 5/5 | reproduced |" in text
    assert "old table" not in text
    assert text.startswith("# Project\n\n") and text.endswith(f"{README_END}\n\nmore text\n")
    assert not update_readme_block(readme, results)  # unchanged: nothing written
    readme.write_text("# no markers\n")
    with pytest.raises(ReadmeMarkersMissing, match="has no <!-- verdicts:start --> ... <!-- verdicts:end --> block"):
        update_readme_block(readme, results)


@pytest.mark.parametrize("paper,parts", [
    ("[BN] Fig. 1a: ~0.98-0.99 vs ~0.97-0.98", ("[BN] Fig. 1a", "~0.98-0.99 vs ~0.97-0.98")),
    ("[S0]: 68%", ("[S0]", "68%")),
    ("[S3]; [LN] Sec. 6: LN not better than BN on ConvNets", ("[S3]; [LN] Sec. 6", "LN not better than BN on ConvNets")),
    ("[LN], [GN]", ("[LN], [GN]", "-")),
    ("[S1], [S3] (no number)", ("[S1], [S3]", "(no number)")),
    ("(control: no batch statistics)", ("-", "(control: no batch statistics)")),
    (float("nan"), ("-", "-")),
])
def test_the_paper_field_splits_into_source_and_number(paper, parts):
    assert split_paper(paper) == parts


@pytest.mark.parametrize("effect,lo,hi,half,shown", [
    (0.00224, -0.00222, 0.0067, 0.00446, "+0.0022 [-0.0022, 0.0067]"),  # two digits of the half-width
    (-1733.3, -2020.2, -1446.5, 286.8, "-1733 [-2020, -1446]"),
    (0.047, 0.047, 0.047, 0.0, "+0.047 [0.047, 0.047]"),  # every seed alike: the effect's own precision
    (-0.0014, -0.158, 0.155, 0.157, "+0.00 [-0.16, 0.16]"),  # rounds to zero: no "-0.00"
    (1.1e-06, 8.6e-07, 1.3e-06, 2.2e-07, "+1.1e-06 [8.6e-07, 1.3e-06]"),
    (0.5, float("nan"), float("nan"), float("nan"), "+0.50 [-, -]"),  # one seed: no interval
    (float("nan"), float("nan"), float("nan"), float("nan"), "-"),
])
def test_the_effect_is_shown_with_its_interval_at_one_precision(effect, lo, hi, half, shown):
    row = pd.Series({"effect": effect, "lo": lo, "hi": hi, "half_width": half})
    assert effect_with_interval(row) == shown


def test_update_readme_script(results, tmp_path, capsys):
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme_verdicts.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\n{README_END}\n")
    assert script.main(["--readme", str(readme), "--results", str(results)]) == 0
    assert "[`demo`](results/demo/REPORT.md)" in readme.read_text()
    assert script.main(["--readme", str(tmp_path / "missing.md"), "--results", str(results)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------------------- user errors
@pytest.mark.parametrize("raised,message", [
    (ClaimSpecError("claim c: unknown expect 'bigger'; valid: greater, less, equal, between"),
     "error: claim c: unknown expect 'bigger'; valid: greater, less, equal, between\n"),
    (SystemExit("error: no finished runs of 'demo'"), "error: no finished runs of 'demo'\n"),
])
def test_user_errors_are_one_line_and_exit_2(monkeypatch, capsys, raised, message):
    def fail(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(cli, "analyse", fail)
    assert cli.main(["demo"]) == 2
    captured = capsys.readouterr()
    assert captured.err == message and "Traceback" not in captured.err


def test_an_unknown_experiment_through_the_real_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "normrepro.analysis", "no_such_experiment", "--results",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "no_such_experiment" in proc.stderr and "Traceback" not in proc.stderr


def test_frames_needs_from_results(capsys):
    assert cli.main(["demo", "--frames", "x"]) == 2
    assert capsys.readouterr().err == "error: --frames needs --from-results\n"


def test_metrics_frame_round_trip_keeps_the_grid_columns(results):
    """The re-judged metrics frame is the committed one, written back unchanged in content."""
    with gzip.open(results / "demo" / "metrics.csv.gz", "rt") as fh:
        committed = pd.read_csv(fh)
    cli.analyse("demo", "cpu", SEEDS, results_root=results, from_results=True)
    rewritten = pd.read_csv(results / "demo" / "metrics.csv.gz")
    pd.testing.assert_frame_equal(rewritten, committed)
