"""A run that fails before ML Metadata records it: the error names the store, and the summary
is the run's own (never the previous run's, never written over another run's)."""

from __future__ import annotations

import json

import pytest

from pipeline import data, local
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


def test_a_window_reaching_before_the_data_names_the_missing_drop_and_the_window(tmp_path):
    """Evaluating January 2013 needs a training window in 2012, which neither the landing zone
    nor the bundled tables hold: the error says which months the run is made of."""
    config = local_config(tmp_path, eval_months=(Month(2013, 1),), train_window=2, tune=False)
    with pytest.raises(data.DataError) as caught:
        local.run(config, tmp_path / "runs")
    assert str(caught.value) == (
        f"no drop for 2012-11: {config.landing_root}/2012-11 does not exist (a drop holds "
        "flights.csv, weather.csv, planes.csv), and the source tables hold no flights for "
        "2012-11 to deliver it from; the run is trained on 2012-11..2012-12 (validation "
        "2012-12), evaluated on 2013-01"
    )
