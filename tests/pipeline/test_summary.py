"""The run summary as a terminal report, from a summary dict like summarize() returns."""

from __future__ import annotations

import pytest

from pipeline import summary
from pipeline.constants import EVAL_METRICS, NodeId

pytestmark = pytest.mark.unit


def _summary(**changes) -> dict:
    base = {
        "pipeline": "flight_delay",
        "run_id": "2026-11-30T05:00:00",
        "status": "succeeded",
        "components": [
            {"component": NodeId.TRAINER, "state": "ran", "seconds": 12.34},
            {"component": NodeId.EVALUATOR, "state": "cached", "seconds": 0.5},
        ],
        "data": {
            "months": {
                "2013-01": {"span": 201301, "rows": 1250, "role": "train"},
                "2013-02": {"span": 201302, "rows": 1250, "role": "validation"},
                "2013-03": {"span": 201303, "rows": 500, "role": "eval"},
            },
            "drift": [],
        },
        "candidate_auc": 0.7123,
        "champion_auc": 0.7081,
        "eval_metrics": {
            "overall": {
                "auc": 0.7123,
                "binary_accuracy": 0.75,
                "calibration": 1.01,
                "example_count": 500.0,
                "auc_diff": 0.0042,
            },
            "carrier=UA": {
                "auc": 0.7,
                "binary_accuracy": 0.7,
                "calibration": 0.9,
                "example_count": 80.0,
            },
        },
        "validation": {"ok": True, "failures": []},
        "blessed": True,
        "baseline_model": "/models/7",
        "pushed": True,
        "pushed_destination": "/serving/8",
        "pushed_version": "8",
        "served_version": "8",
        "infra_validation": {"ok": True, "detail": "8 requests answered"},
    }
    base.update(changes)
    return base


def test_a_successful_run_reports_components_rows_metrics_blessing_and_push():
    text = summary.format_summary(_summary())
    lines = text.splitlines()
    assert lines[0] == "Pipeline flight_delay, run 2026-11-30T05:00:00: succeeded"
    assert any(NodeId.TRAINER in line and "ran" in line and "12.3 s" in line for line in lines)
    assert (
        "Months (rows): train 2013-01 (1,250); validation 2013-02 (1,250); eval 2013-03 (500)"
        in lines
    )
    assert "Candidate AUC 0.7123; champion AUC 0.7081 on the same months" in lines
    overall = next(line for line in lines if line.strip().startswith("overall"))
    assert "AUC 0.7123" in overall and "n 500" in overall and "AUC vs baseline +0.0042" in overall
    assert lines.index(overall) < next(i for i, line in enumerate(lines) if "carrier=UA" in line)
    assert "Blessed: yes (all thresholds met, compared with /models/7)" in lines
    assert "Pushed: /serving/8" in lines


def test_a_blocked_run_says_why_nothing_was_pushed():
    failures = ["auc 0.6000 is below the floor 0.7"]
    text = summary.format_summary(
        _summary(
            blessed=False,
            pushed=False,
            validation={"ok": False, "failures": failures},
            status="succeeded",
        )
    )
    assert f"Blessed: no ({failures[0]})" in text
    assert "Pushed: no (the model was not blessed)" in text
    infra_failed = summary.format_summary(
        _summary(pushed=False, infra_validation={"ok": False, "detail": "loading failed"})
    )
    assert "Pushed: no (infra validation failed)" in infra_failed
    assert "FAILED (loading failed)" in infra_failed


def test_a_failed_run_ends_with_its_error():
    text = summary.format_summary(_summary(status="failed", error="AnomaliesFound: x"))
    assert text.splitlines()[0].endswith(": failed")
    assert text.splitlines()[-1] == "Error: AnomaliesFound: x"


def test_mobile_variants_are_listed_with_their_verdicts():
    mobile = {
        "published": False,
        "destination": None,
        "reason": "no variant passed its gate",
        "variants": {
            "int8": {
                "published": False,
                "reason": "AUC drop 0.2 exceeds",
                "size_bytes": 2048,
                "auc": 0.5,
                "latency_p50_ms": 0.25,
                "max_abs_diff": 0.3,
            }
        },
    }
    text = summary.format_summary(_summary(mobile=mobile))
    assert "Mobile (TFLite): not published (no variant passed its gate)" in text
    assert any(
        "int8" in line and "REJECTED" in line and "2.0 KB" in line for line in text.splitlines()
    )


def test_summary_reads_every_evaluator_metric_and_the_gated_change():
    assert set(summary.METRICS) == set(EVAL_METRICS.values()) | {"auc_diff"}


def test_a_model_already_served_says_no_new_version_was_made():
    text = summary.format_summary(_summary(already_pushed=True))
    assert "Pushed: /serving/8 (already serving this model; no new version)" in text


def test_drift_reported_with_warn_names_month_feature_and_figures():
    finding = {
        "month": "2013-03",
        "feature": "temp",
        "kind": "drift",
        "description": "The approximate Jensen-Shannon divergence between current and previous "
        "is 0.99 (up to six significant digits), above the threshold 0.6.",
    }
    data = {
        "months": {"2013-03": {"span": 201303, "rows": 500, "role": "eval"}},
        "drift": [finding],
    }
    lines = summary.format_summary(_summary(data=data)).splitlines()
    drift = [line for line in lines if line.startswith("Drift (warn)")]
    assert drift == [
        "Drift (warn): month 2013-03, feature 'temp': The approximate Jensen-Shannon divergence "
        "between current and previous is 0.99 (up to six significant digits), above the "
        "threshold 0.6."
    ]


def test_without_a_champion_the_summary_says_so():
    lines = summary.format_summary(_summary(champion_auc=None)).splitlines()
    assert (
        "Candidate AUC 0.7123; champion AUC n/a (no blessed model older than the candidate)"
        in lines
    )


def test_a_pushed_model_that_a_newer_version_overtook_is_reported_as_not_served(tmp_path):
    """A newcomer restored a month's earlier drop: every component came from the first run's
    cache, which had pushed version 8, while version 9 (trained on the withdrawn drop) was
    what TF Serving served."""
    for version in ("8", "9", "tmp-staging"):
        (tmp_path / version).mkdir()
    served = summary._served_version(f"{tmp_path}/8")
    assert served == "9"
    lines = summary.format_summary(_summary(served_version=served)).splitlines()
    assert lines[lines.index("Pushed: /serving/8") + 1] == (
        "NOT SERVED: TF Serving serves the highest version, 9, which holds another model, "
        "pushed later; this run's model is version 8. Removing the newer version folder rolls "
        "back to it; `--no-cache` retrains and competes with the served model."
    )
    assert not any("NOT SERVED" in line for line in summary.format_summary(_summary()).split("\n"))


def test_a_one_class_slice_shows_its_auc_as_undefined_never_as_zero():
    metrics = summary._defined(
        {"auc": 0.0, "mean_label": 0.0, "calibration": float("inf"), "example_count": 1.0}
    )
    assert metrics == {
        "auc": None,
        "auc_undefined": summary.ONE_CLASS,
        "mean_label": 0.0,
        "calibration": None,
        "example_count": 1.0,
    }
    both = summary._defined({"auc": 0.0, "mean_label": 0.5})
    assert both == {"auc": 0.0, "mean_label": 0.5}  # a real (if dreadful) ranking stays
    text = summary.format_summary(
        _summary(eval_metrics={"overall": {"auc": 0.7}, "carrier=YV": metrics})
    )
    line = next(line for line in text.splitlines() if "carrier=YV" in line)
    assert "AUC undefined" in line and "cal n/a" in line and "one class" in line
    assert line.endswith("(small: < 100 examples)")  # as the report and the model card say
    lines = summary.format_summary(_summary()).splitlines()
    assert next(line for line in lines if "carrier=UA" in line).endswith("(small: < 100 examples)")
    assert "small" not in next(line for line in lines if line.strip().startswith("overall"))
    assert "0.0000" not in line
