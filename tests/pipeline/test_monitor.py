"""pipeline/monitor.py: the monitoring command's files, table and exit codes.

The lineage is the only stand-in: it points at training statistics TFDV computed from real
Jan-Feb rows, laid out as StatisticsGen writes them (the store-backed run is in
tests/pipeline/test_local.py)."""

from __future__ import annotations

import json
import pathlib

import prediction_logs
import pytest

from pipeline import monitor
from serving import monitor as M

pytestmark = pytest.mark.component

VERSION = 1796040289


@pytest.fixture(scope="module")
def nov_dec():
    year = prediction_logs.year_rows()
    return year[year.month >= 11].sample(1200, random_state=3).reset_index(drop=True)


@pytest.fixture
def lineage(tmp_path, monkeypatch):
    """Patches pipeline.lineage.lineage: version VERSION trained on Jan and Feb (250 rows each,
    as in the e2e run), with per-month statistics files; any other version is unknown."""
    from pipeline import lineage as lineage_module

    year = prediction_logs.year_rows()
    months = []
    for month in (1, 2):
        folder = tmp_path / "stats" / str(month)
        (folder / "Split-month").mkdir(parents=True)
        rows = year[year.month == month].sample(250, random_state=month)
        stats = M.statistics(M.rows_from_frame(rows))
        (folder / "Split-month" / "FeatureStats.pb").write_bytes(
            stats.SerializeToString()  # a DatasetFeatureStatisticsList, as StatisticsGen's
        )
        months.append(
            {"month": f"2013-0{month}", "role": "training", "statistics_uri": str(folder)}
        )

    def fake(metadata_path, target):
        if target != str(VERSION):
            raise LookupError(f"no pushed version {target!r} in ML Metadata at {metadata_path}")
        return {"kind": f"serving version {target}", "months": months, "evaluation": None}

    monkeypatch.setattr(lineage_module, "lineage", fake)
    return tmp_path / "output"


def _run(logs, output, *extra) -> int:
    return monitor.main(["--logs", str(logs), "--output-dir", str(output), *extra])


def test_healthy_then_skewed_window_report_and_exit_codes(tmp_path, lineage, nov_dec, capsys):
    healthy = tmp_path / "healthy"
    prediction_logs.write(str(healthy), prediction_logs.records(nov_dec, VERSION))
    assert _run(healthy, lineage) == monitor.EXIT_HEALTHY
    table = capsys.readouterr().out
    assert "HEALTHY" in table and f"version {VERSION}" in table
    (report_file,) = (lineage / "monitor").glob(f"*/{monitor.REPORT_FILE}")
    report = json.loads(report_file.read_text())
    assert report["status"] == "healthy" and report["model"]["version"] == str(VERSION)
    assert report["counts"]["requests"] == 120 and report["counts"]["rows"] == 1200
    assert report["model"]["training_months"] == ["2013-01", "2013-02"]
    assert {c["kind"] for c in report["checks"]} == {"skew", "missing"}
    temp = next(c for c in report["checks"] if c["feature"] == "temp" and c["kind"] == "skew")
    assert set(temp) == {"feature", "kind", "metric", "value", "threshold", "verdict", "detail"}

    # A later window in Celsius: skew on temp, and drift against the window before.
    later = tmp_path / "celsius"
    celsius = prediction_logs.skewed(nov_dec, "temp")
    logs = prediction_logs.records(celsius, VERSION, start=1_384_000_000)
    prediction_logs.write(str(later), logs)
    assert _run(later, lineage) == monitor.EXIT_ALERT
    out = capsys.readouterr().out
    assert "ALERT: temp (" in out and "ALERT temp (skew)" in out and "ALERT temp (drift)" in out
    reports = sorted((lineage / "monitor").glob(f"*/{monitor.REPORT_FILE}"))
    report = json.loads(reports[-1].read_text())
    assert report["alerts"] == ["temp"]
    assert report["window"]["previous"] == reports[0].parent.name


def test_bad_input_exits_2_with_one_line_naming_what_and_where(tmp_path, lineage, nov_dec, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(empty, lineage) == monitor.EXIT_BAD_INPUT
    expected = f"no PredictionLog files (prediction_log-*.tfrecord) in {empty}"
    assert expected in capsys.readouterr().err

    logs = tmp_path / "logs"
    prediction_logs.write(str(logs), prediction_logs.records(nov_dec.head(20), VERSION))
    assert _run(logs, lineage, "--since", "2014-01-01") == monitor.EXIT_BAD_INPUT
    assert "all outside" in capsys.readouterr().err

    assert _run(logs, lineage, "--model-version", "7") == monitor.EXIT_BAD_INPUT
    assert f"no request served by model version 7 in the logs (held: {VERSION}" in (
        capsys.readouterr().err
    )

    other = prediction_logs.records(nov_dec.head(10), 1800000000)
    prediction_logs.write(str(logs), other, name="20131102T000000Z-test-1-0")
    assert _run(logs, lineage) == monitor.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "several model versions" in err and "--model-version" in err
    assert _run(logs, lineage, "--model-version", "1800000000") == monitor.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no pushed version '1800000000'" in err


def test_a_corrupt_log_file_is_named_and_the_readable_records_are_monitored(
    tmp_path, lineage, nov_dec, capsys
):
    logs = tmp_path / "logs"
    good = prediction_logs.write(str(logs), prediction_logs.records(nov_dec, VERSION))
    cut = prediction_logs.write(
        str(logs), prediction_logs.records(nov_dec.head(40), VERSION), name="20131102-cut"
    )
    data = open(cut, "rb").read()
    open(cut, "wb").write(data[: len(data) // 2])  # a copy cut short

    assert _run(logs, lineage) == monitor.EXIT_HEALTHY
    (report_file,) = (lineage / "monitor").glob(f"*/{monitor.REPORT_FILE}")
    report = json.loads(report_file.read_text())
    assert report["logs"]["unreadable_files"] == 1
    assert report["counts"]["requests"] >= 120  # the good file whole, the cut one's first half
    assert any(cut in note and "after" in note for note in report["notes"])

    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / pathlib.Path(good).name).write_text("not a TFRecord file")
    assert _run(only_bad, lineage) == monitor.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no readable PredictionLog file" in err and str(only_bad) in err

    assert _run(tmp_path / "nowhere", lineage) == monitor.EXIT_BAD_INPUT
    assert "no such folder" in capsys.readouterr().err


def test_windows_are_filed_per_version_and_drift_compares_with_an_earlier_window(
    tmp_path, lineage, nov_dec
):
    logs = tmp_path / "logs"
    prediction_logs.write(str(logs), prediction_logs.records(nov_dec, VERSION, start=1_384_000_000))
    window = ["--since", "2013-11-09T12:00", "--until", "2013-11-10"]
    assert _run(logs, lineage, *window) == monitor.EXIT_HEALTHY
    # The same window again: same folder (replaced), and it is not its own drift baseline.
    assert _run(logs, lineage, *window) == monitor.EXIT_HEALTHY
    (folder,) = [p.parent for p in (lineage / "monitor").glob(f"*/{monitor.REPORT_FILE}")]
    assert folder.name == f"20131109T120000Z--20131110T000000Z--v{VERSION}"
    assert json.loads((folder / monitor.REPORT_FILE).read_text())["window"]["previous"] is None


def test_a_file_that_is_not_a_metadata_store_exits_2_naming_it(tmp_path, nov_dec, capsys):
    from pipeline.config import local_config

    store = pathlib.Path(local_config(tmp_path / "output").metadata_path)
    store.parent.mkdir(parents=True)
    store.write_text("not a database")
    logs = tmp_path / "logs"
    prediction_logs.write(str(logs), prediction_logs.records(nov_dec.head(20), VERSION))
    assert _run(logs, tmp_path / "output") == monitor.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{store} is not a readable ML Metadata store" in err
