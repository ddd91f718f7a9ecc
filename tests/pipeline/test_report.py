"""The run report (pipeline/report.py) on small synthetic inputs: plots, readers, sections,
the page's self-containment, and a render in headless Chromium. The report of a real run is
checked by tests/pipeline/test_local.py."""

from __future__ import annotations

import json
import types

import pytest
from browser import colours, parse_page, render

from pipeline import report
from pipeline.constants import NodeId
from transforms import features as F

PNG = b"\x89PNG\r\n\x1a\n"
SECTIONS = ["data", "tuning", "training", "evaluation", "serving", "replay", "components"]


def _summary(**changes) -> dict:
    base = {
        "pipeline": "flight_delay",
        "run_id": "2026-11-30T05:00:00",
        "status": "succeeded",
        "components": [{"component": NodeId.TRAINER, "state": "ran", "seconds": 12.3}],
        "data": {
            "months": {
                "2013-01": {"span": 201301, "rows": 250, "role": "train"},
                "2013-02": {"span": 201302, "rows": 250, "role": "validation"},
                "2013-03": {"span": 201303, "rows": 240, "role": "eval"},
            },
            "drift": [
                {"month": "2013-03", "feature": "temp", "kind": "drift", "description": "JSD 0.4"}
            ],
        },
        "candidate_auc": 0.71,
        "champion_auc": 0.70,
        "eval_metrics": {
            "overall": {"auc": 0.71, "binary_accuracy": 0.75, "example_count": 240.0},
            "carrier=UA": {"auc": 0.68, "binary_accuracy": 0.7, "example_count": 150.0},
            "carrier=YV": {
                "auc": None,
                "auc_undefined": "undefined: the slice holds one class only",
                "binary_accuracy": 1.0,
                "example_count": 2.0,
            },
        },
        "validation": {"ok": True, "failures": []},
        "blessed": True,
        "pushed": True,
        "pushed_version": "1700000000",
        "pushed_destination": "/serving/flight_delay/1700000000",
        "infra_validation": {"ok": True, "detail": "8 requests answered"},
        "mobile": {
            "published": True,
            "destination": "/mobile/flight_delay/1700000000",
            "reason": None,
            "savedmodel_auc": 0.71,
            "variants": {
                "float32": {
                    "published": True,
                    "reason": "matches",
                    "size_bytes": 120_000,
                    "auc": 0.71,
                    "latency_p50_ms": 0.3,
                    "max_abs_diff": 1e-7,
                },
                "int8": {
                    "published": False,
                    "reason": "saturates",
                    "size_bytes": 90_000,
                    "auc": 0.69,
                    "latency_p50_ms": 0.4,
                    "max_abs_diff": 0.2,
                },
            },
        },
    }
    base.update(changes)
    return base


def _statistics(month: int, temp_values: list[float], carriers: dict[str, int], missing: int):
    """One month's DatasetFeatureStatistics: the label, a numeric and a categorical feature."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    rows = len(temp_values) + missing
    dataset = statistics_pb2.DatasetFeatureStatistics(num_examples=rows)
    label = dataset.features.add()
    label.path.step.append(F.LABEL_KEY)
    label.num_stats.mean = 0.25 * month
    label.num_stats.common_stats.num_non_missing = rows
    temp = dataset.features.add()
    temp.path.step.append("temp")
    temp.num_stats.common_stats.num_non_missing = len(temp_values)
    temp.num_stats.common_stats.num_missing = missing
    histogram = temp.num_stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    for value in temp_values:  # one zero-width bucket per value
        histogram.buckets.add(low_value=value, high_value=value, sample_count=1)
    carrier = dataset.features.add()
    carrier.path.step.append("carrier")
    carrier.string_stats.common_stats.num_non_missing = rows
    for value, count in carriers.items():
        carrier.string_stats.top_values.add(value=value, frequency=count)
    return dataset


@pytest.fixture(scope="module")
def statistics():
    return {
        "2013-01": _statistics(1, [10.0, 20.0, 30.0], {"UA": 2, "B6": 2}, missing=1),
        "2013-02": _statistics(2, [10.0, 10.0, 20.0, 30.0], {"UA": 3, "B6": 1}, missing=0),
        "2013-03": _statistics(3, [50.0, 60.0], {"YV": 3, "UA": 1}, missing=2),
    }


PLOTS = {
    "candidate": {
        "roc": ([0.0, 0.2, 1.0], [0.0, 0.7, 1.0]),
        "calibration": [(0.1, 0.12, 100.0), (0.5, 0.4, 20.0)],
    },
    "champion": {"roc": ([0.0, 0.3, 1.0], [0.0, 0.6, 1.0]), "calibration": [(0.2, 0.3, 50.0)]},
}
CURVES = {
    "train": {"loss": [0.6, 0.5, 0.45], "auc": [0.6, 0.7, 0.72]},
    "validation": {"loss": [0.55, 0.5, 0.52], "auc": [0.65, 0.71, 0.70]},
}
STEPS = [
    {"month": "2013-03", "rows": 240, "training_months": "2013-01..2013-02",
     "candidate_auc": 0.7, "champion_auc": None, "frozen_auc": 0.7,
     "decision": "pushed", "pushed_version": "1"},
    {"month": "2013-04", "rows": 250, "training_months": "2013-02..2013-03",
     "candidate_auc": 0.68, "champion_auc": 0.69, "frozen_auc": 0.66,
     "decision": "kept the champion: auc changed by -0.01", "pushed_version": None},
]  # fmt: skip
TRIALS = [
    {"trial_id": "1", "score": 0.71, "learning_rate": 0.003, "hidden_units": 64},
    {"trial_id": "0", "score": 0.69, "learning_rate": 0.01, "hidden_units": 32},
]


def _full_sections(statistics) -> list[report.Section]:
    summary = _summary()
    return [
        report.data_section(summary, statistics, None),
        report.tuning_section(TRIALS, {"learning_rate": 0.003, "hidden_units": 64}),
        report.training_section(CURVES, max_epochs=5),
        report.evaluation_section(summary, PLOTS),
        report.serving_section(summary),
        report.replay_section(STEPS),
    ]


def _texts(section: report.Section) -> str:
    return " ".join(
        b.text if b.kind == "text" else " ".join(" ".join(r) for r in b.rows)
        for b in section.blocks
        if b.kind in ("text", "table")
    )


@pytest.mark.unit
def test_every_plot_helper_draws_a_png(statistics):
    distributions = report.feature_distributions(statistics, {report.TRAINING: ["2013-01"]})
    months = {"2013-01": {"rows": 250, "role": "train", "label_rate": 0.2}}
    pngs = [
        report.plot_months(months),
        *(report.plot_distribution(d) for d in distributions),
        report.plot_training(CURVES, kept_epoch=2),
        report.plot_roc({m: p["roc"] for m, p in PLOTS.items()}),
        report.plot_calibration({m: p["calibration"] for m, p in PLOTS.items()}),
        report.plot_slices(_summary()["eval_metrics"]),
        report.plot_replay(STEPS),
    ]
    assert len(pngs) == 8
    for png in pngs:
        assert png.startswith(PNG) and len(png) > 2000


@pytest.mark.unit
def test_distributions_compare_the_training_window_with_evaluation(statistics):
    groups = {report.TRAINING: ["2013-01", "2013-02"], report.EVALUATION: ["2013-03"]}
    by_name = {d["name"]: d for d in report.feature_distributions(statistics, groups)}
    assert set(by_name) == {"temp", "carrier"}  # the label is shown as a rate, not here
    temp = by_name["temp"]
    assert temp["kind"] == "numeric" and len(temp["edges"]) == report.BINS + 1
    assert (temp["edges"][0], temp["edges"][-1]) == (10.0, 60.0)  # every month's range
    training, evaluation = temp["groups"][report.TRAINING], temp["groups"][report.EVALUATION]
    assert training["missing_rate"] == pytest.approx(1 / 8)
    assert evaluation["missing_rate"] == pytest.approx(2 / 4)
    assert sum(training["fractions"]) == pytest.approx(1.0)
    assert training["fractions"][0] == pytest.approx(3 / 7)  # 10.0 three times of 7 present
    assert evaluation["fractions"][-1] == pytest.approx(1 / 2)  # 60.0 lands in the last bin
    carrier = by_name["carrier"]
    assert carrier["values"] == ["UA", "B6", "YV"]  # most frequent first, over both groups
    assert carrier["groups"][report.TRAINING]["fractions"] == pytest.approx([5 / 8, 3 / 8, 0])


@pytest.mark.unit
def test_the_data_section_gives_rows_label_rate_and_findings_per_month(statistics):
    section = report.data_section(_summary(), statistics, None)
    (months, findings) = [b for b in section.blocks if b.kind == "table"]
    assert months.rows[0] == ["2013-01", "201301", "", "train", "250", "25.0%"]
    assert months.rows[2][3:] == ["eval", "240", "75.0%"]
    assert findings.rows == [["2013-03", "temp", "drift", "JSD 0.4"]]
    (gallery,) = [b for b in section.blocks if b.kind == "gallery"]
    assert len(gallery.figures) == 2


@pytest.mark.unit
def test_tuning_training_evaluation_serving_and_replay_sections(statistics):
    _, tuning, training, evaluation, serving, replay = _full_sections(statistics)
    assert tuning.blocks[0].rows[0] == ["1", "0.7100", "0.003", "64"]
    assert tuning.blocks[0].row_classes == ["best", ""]
    assert "stopped early after epoch 3 of at most 5" in _texts(training)
    assert "kept epoch 2 (best validation AUC 0.7100" in _texts(training)
    slices = _texts(evaluation)
    assert "carrier=YV undefined" in slices and "2 (small)" in slices
    assert "champion AUC 0.7000" in slices
    assert "Pushed version 1700000000" in _texts(serving)
    (variants,) = [b for b in serving.blocks if b.kind == "table"]
    assert variants.rows[1][:5] == ["int8", "rejected", "87.9", "0.6900", "+0.0200"]
    assert [row[-1] for row in replay.blocks[1].rows] == [s["decision"] for s in STEPS]


@pytest.mark.unit
def test_the_page_has_every_section_its_images_inline_and_nothing_external(statistics):
    html = report.render(_summary(), _full_sections(statistics))
    page = parse_page(html)
    assert page.sections == SECTIONS
    # months, 2 distributions, training, ROC, calibration, slices, replay
    assert len(page.images) == 8
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.external() == [] and page.scripts == 0 and page.links == 0


@pytest.mark.unit
def test_missing_inputs_are_said_not_fatal(tmp_path):
    summary = {
        "pipeline": "flight_delay",
        "run_id": "2026-11-30T05:00:00",
        "components": [],
        "status": "failed",
        "error": "AnomaliesFound: <script>alert(1)</script> month 2013-03",
    }
    path = report.write_report(summary, str(tmp_path / "absent.sqlite"), tmp_path / "run")
    assert path == tmp_path / "run" / report.REPORT_FILE
    html = path.read_text()
    page = parse_page(html)
    assert page.sections == SECTIONS and page.images == [] and page.scripts == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # autoescaped
    assert "No tuning in this run" in html
    assert "No evaluation in this run" in html
    assert "No Trainer logs" in html
    assert "No replay" in html


@pytest.mark.unit
def test_no_champion_and_no_plots_are_said():
    summary = _summary(champion_auc=None)
    no_plots = _texts(report.evaluation_section(summary, {}))
    assert "no champion yet" in no_plots and "no ROC or calibration plots" in no_plots
    candidate_only = report.evaluation_section(summary, {"candidate": PLOTS["candidate"]})
    assert "No champion to compare with" in _texts(candidate_only)


@pytest.mark.unit
def test_a_section_that_cannot_be_built_says_why():
    def broken():
        raise ValueError("corrupt statistics")

    section = report._guarded("data", "Data", broken)
    assert section.id == "data"
    assert "ValueError: corrupt statistics" in _texts(section)


@pytest.mark.unit
def test_tuner_results_and_best_hyperparameters_are_read(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tuner_results.json").write_text(json.dumps(TRIALS))
    (tmp_path / "best").mkdir()
    best = {"space": [], "values": {"learning_rate": 0.003}}
    (tmp_path / "best" / "best_hyperparameters.txt").write_text(json.dumps(best))
    outputs = {
        NodeId.TUNER: {
            "tuner_results": [types.SimpleNamespace(uri=str(tmp_path / "results"))],
            "best_hyperparameters": [types.SimpleNamespace(uri=str(tmp_path / "best"))],
        }
    }
    assert report.read_tuning(outputs) == (TRIALS, {"learning_rate": 0.003})
    assert report.read_tuning({}) == ([], None)


@pytest.mark.component
def test_training_curves_are_read_from_tensorboard_logs(tmp_path):
    import tensorflow as tf

    for split, values in CURVES.items():
        with tf.summary.create_file_writer(str(tmp_path / split)).as_default():
            for epoch in range(3):
                for metric, series in values.items():
                    tf.summary.scalar(f"epoch_{metric}", series[epoch], step=epoch)
                tf.summary.scalar("evaluation_auc_vs_iterations", 0.5, step=epoch * 10)
    curves = report.read_training_curves(str(tmp_path))
    assert curves == {s: {m: pytest.approx(v) for m, v in c.items()} for s, c in CURVES.items()}
    assert report.read_training_curves(str(tmp_path / "absent")) == {}


@pytest.mark.component
def test_a_synthetic_report_renders_offline_in_headless_chromium(statistics, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report.render(_summary(), _full_sections(statistics)))
    rendered = render(page, tmp_path / "report.png")
    assert rendered.console == [], rendered.log[-3000:]
    assert colours(rendered.screenshot) > 100  # text and plots, not a blank page
