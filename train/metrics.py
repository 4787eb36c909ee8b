"""metrics.csv of a run folder: kept as a thin re-export of llmhist.train.runfolder, which defines
every file of a run folder (readers may import from either). No torch here."""

from __future__ import annotations

from .runfolder import (
    METRIC_COLUMNS,
    TIMING_COLUMNS,
    check_metrics,
    metrics_csv,
    read_metrics,
    write_metrics,
)

__all__ = ["METRIC_COLUMNS", "TIMING_COLUMNS", "check_metrics", "metrics_csv", "read_metrics", "write_metrics"]
