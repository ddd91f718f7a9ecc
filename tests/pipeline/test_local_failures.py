"""A run that fails before ML Metadata records it: the error names the store, and the summary
is the run's own (never the previous run's, never written over another run's)."""

from __future__ import annotations

import json

import pytest

from pipeline import local
from pipeline.config import local_config
from pipeline.months import Month

pytestmark = pytest.mark.component


def test_an_unusable_metadata_store_is_named_and_no_other_summary_is_touched(tmp_path):
    config = local_config(
        tmp_path, eval_months=(Month(2013, 3),), train_window=2, rows_per_month=50, tune=False
    )
    store = tmp_path / "metadata" / "flight_delay.sqlite"
    store.mkdir(parents=True)  # a folder where the SQLite file should be: cannot be opened
    earlier = tmp_path / "runs" / "2026-01-01T00-00-00" / "summary.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text(json.dumps({"run_id": "2026-01-01T00:00:00", "status": "succeeded"}))
    before = earlier.read_bytes()

    result = local.run(config, tmp_path / "runs")

    assert result["status"] == "failed"
    assert f"(ML Metadata store: {store})" in result["error"]
    assert result["components"] == [] and result["run_id"] != "2026-01-01T00:00:00"
    assert earlier.read_bytes() == before
    written = json.loads(open(result["summary_file"]).read())
    assert written["run_id"] == result["run_id"] and written["status"] == "failed"
