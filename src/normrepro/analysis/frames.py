"""Row selection shared by claims, derived metrics and plots: ``where`` filters on frame columns."""

from __future__ import annotations

import pandas as pd

from normrepro.analysis.columns import canonical as _canonical


def select(frame: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows whose column ``key`` equals the value (or one of the list of values) for every key of ``where``."""
    for key, value in (where or {}).items():
        if key not in frame.columns:
            raise KeyError(f"filter on {key!r}, which is not a column; columns: {sorted(frame.columns)}")
        wanted = {_canonical(v) for v in (value if isinstance(value, list) else [value])}
        frame = frame[frame[key].map(_canonical).isin(wanted)]
    return frame
