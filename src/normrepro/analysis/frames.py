"""Row selection shared by claims, derived metrics and plots: ``where`` filters on frame columns."""

from __future__ import annotations

import pandas as pd


def _canonical(value) -> str:
    """Compare by value, not by dtype: 3, 3.0 and "3" are the same grid value (CSV and NaN-holding columns
    turn integers into floats)."""
    if isinstance(value, bool):
        return str(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else repr(f)


def select(frame: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows whose column ``key`` equals the value (or one of the list of values) for every key of ``where``."""
    for key, value in (where or {}).items():
        if key not in frame.columns:
            raise KeyError(f"filter on {key!r}, which is not a column; columns: {sorted(frame.columns)}")
        wanted = {_canonical(v) for v in (value if isinstance(value, list) else [value])}
        frame = frame[frame[key].map(_canonical).isin(wanted)]
    return frame
