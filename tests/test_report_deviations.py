"""REPORT.md declares where the setup departs from the paper: the experiment file's ``deviations:`` block."""

from __future__ import annotations

from normrepro.analysis.report import deviations_table


def test_each_deviation_is_a_row_and_a_pipe_cannot_split_a_cell():
    lines = deviations_table([{"what": "input scaling", "paper": "[0, 1]", "here": "standardized",
                               "effect": "|effect| unknown"}])
    assert lines[0] == "## Deviations from the paper"
    assert "| input scaling | [0, 1] | standardized | \\|effect\\| unknown |" in lines


def test_no_block_says_none_is_declared():
    assert "None declared" in deviations_table([])[2]
