"""The whole pipeline on a sample of the real data, with LocalDagRunner and SQLite MLMD.

One module-scoped run (window 2013-01..2013-03, evaluated on 2013-04..2013-05), then: an
unchanged re-run (the last run reused; without reuse, fully cached by TFX), a run whose AUC
floor cannot be met (nothing pushed), a newer model compared with the champion, and bad drops
of the newest month (stopped before Pusher, or reported with drift_action=warn).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import pytest
import tensorflow as tf

from mobile import runtime
from mobile.config import MobileConfig
from mobile.quantize import QUANTIZERS
from models.config import TrainingConfig
from models.constants import EXAMPLES_SIGNATURE, OUTPUT_KEY, PREDICT_SIGNATURE
from pipeline import landing, local, model_card
from pipeline.config import DriftAction, local_config
from pipeline.constants import NodeId, month_node
from pipeline.months import Month
from pipeline.pipeline import create_pipeline
from serving import contract, warmup
from transforms import features as F

pytestmark = pytest.mark.e2e

ROWS_PER_MONTH = 250
EVAL_MONTHS = (Month(2013, 4), Month(2013, 5))
MAY = EVAL_MONTHS[-1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def config(workspace):
    return local_config(
        workspace,
        eval_months=EVAL_MONTHS,
        train_window=3,
        rows_per_month=ROWS_PER_MONTH,
        min_eval_auc=0.5,
        training=TrainingConfig(batch_size=128, max_epochs=2, tuner_trials=2, tuner_epochs=1),
        # 500 eval rows here; a tiny model may lose more AUC to int8 than a real one.
        mobile=MobileConfig(
            min_parity_rows=400, representative_rows=100, latency_runs=50, auc_tolerance=0.05
        ),
    )


@pytest.fixture(scope="module")
def components(config) -> set[str]:
    return {c.id for c in create_pipeline(config).components}


@pytest.fixture(scope="module")
def first_run(config, workspace) -> dict:
    result = local.run(config, workspace / "runs")
    # A pristine copy of the newest drop, for the bad-drop tests to restore.
    landing_root = pathlib.Path(config.landing_root)
    shutil.copytree(landing_root / str(MAY), workspace / "pristine-may")
    return result


def _versions(config, base: str | None = None) -> list[str]:
    base = pathlib.Path(base or config.serving_model_dir)
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def _states(summary: dict) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for component in summary["components"]:
        states.setdefault(component["component"], []).append(component["state"])
    return states


def test_every_component_executes_once(first_run, components):
    assert first_run["status"] == "succeeded", first_run["error"]
    assert _states(first_run) == {name: ["ran"] for name in components}
    assert {month_node(NodeId.EXAMPLE_GEN, Month(2013, m)) for m in range(1, 6)} <= components


def test_summary_reports_months_metrics_blessing_and_push(first_run, config):
    months = first_run["data"]["months"]
    assert {m: (v["span"], v["rows"], v["role"]) for m, v in months.items()} == {
        "2013-01": (201301, ROWS_PER_MONTH, "train"),
        "2013-02": (201302, ROWS_PER_MONTH, "train"),
        "2013-03": (201303, ROWS_PER_MONTH, "validation"),
        "2013-04": (201304, ROWS_PER_MONTH, "eval"),
        "2013-05": (201305, ROWS_PER_MONTH, "eval"),
    }
    assert first_run["data"]["drift"] == []
    overall = first_run["eval_metrics"]["overall"]
    assert overall["example_count"] == 2 * ROWS_PER_MONTH
    assert 0.5 <= overall["auc"] <= 1.0
    assert first_run["candidate_auc"] == overall["auc"] and first_run["champion_auc"] is None
    assert 0.0 < overall["mean_prediction"] < 1.0
    slices = set(first_run["eval_metrics"])
    assert {"month=4", "month=5", "origin=EWR", "origin=JFK", "origin=LGA"} <= slices
    assert any(s.startswith("carrier=") for s in slices)
    assert first_run["blessed"] is True and first_run["validation"]["ok"] is True
    assert first_run["infra_validation"]["ok"] is True
    assert first_run["infra_validation"]["detail"] == (
        f"{len(warmup.PREDICT_BATCHES) + len(warmup.CLASSIFY_BATCHES)} requests answered"
    )
    assert first_run["pushed"] is True
    assert first_run["pushed_destination"] == str(
        pathlib.Path(config.serving_model_dir) / first_run["pushed_version"]
    )

    written = json.loads(pathlib.Path(first_run["summary_file"]).read_text())
    assert written == first_run


def test_blessed_model_gets_tflite_variants_under_the_serving_version(first_run, config):
    mobile = first_run["mobile"]
    version = first_run["pushed_version"]
    assert mobile["published"] is True
    assert mobile["destination"] == str(pathlib.Path(config.mobile_model_dir) / version)
    assert set(mobile["variants"]) == set(QUANTIZERS)
    assert mobile["variants"]["float32"]["published"] is True
    assert mobile["variants"]["float32"]["max_abs_diff"] <= 1e-4
    published = {name for name, v in mobile["variants"].items() if v["published"]}
    files = {p.name for p in pathlib.Path(mobile["destination"]).iterdir()}
    assert files == {runtime.file_name(n) for n in published} | {
        "labels.txt",
        "contract.json",
        "metrics.json",
        model_card.JSON_FILE,
        model_card.MARKDOWN_FILE,
        model_card.HTML_FILE,
    }
    contract = json.loads((pathlib.Path(mobile["destination"]) / "contract.json").read_text())
    assert contract["version"] == int(version)
    assert contract["training_data"] == (
        "trained on 2013-01..2013-03 (validation 2013-03), evaluated on 2013-04..2013-05"
    )


def test_pushed_model_uses_the_tf_serving_layout_and_answers_both_signatures(first_run, config):
    (version,) = _versions(config)
    assert version.isdigit() and version == first_run["pushed_version"]
    model_dir = pathlib.Path(config.serving_model_dir) / version
    assert (model_dir / "saved_model.pb").exists() and (model_dir / "variables").is_dir()
    assert [p.name for p in model_dir.parent.iterdir()] == [version]  # no staging left behind
    assert contract.check(str(model_dir)) == []

    eval_files = tf.io.gfile.glob(f"{first_run['eval_examples_uri']}/Split-eval/*")
    dataset = tf.data.TFRecordDataset(eval_files, compression_type="GZIP")
    records = [r.numpy() for r in dataset.take(5)]
    parsed = tf.io.parse_example(records, F.raw_feature_spec())
    request = {}
    for feature in F.FEATURES:
        value = parsed[feature.name]
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(
                tf.sparse.reset_shape(value, [len(records), 1]),
                "" if feature.dtype is str else float("nan"),
            )
        request[feature.name] = tf.reshape(value, [-1])

    model = tf.saved_model.load(str(model_dir))
    by_examples = model.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(records))
    by_raw = model.signatures[PREDICT_SIGNATURE](**request)
    assert by_raw[OUTPUT_KEY].shape == (5,)
    tf.debugging.assert_near(by_raw[OUTPUT_KEY], by_examples[OUTPUT_KEY], atol=1e-5)

    # TF Serving replays these at load: real eval rows, both Predict and Classify requests.
    logs = warmup.read(str(model_dir / "assets.extra" / "tf_serving_warmup_requests"))
    assert [log.WhichOneof("log_type") for log in logs] == (
        ["predict_log"] * len(warmup.PREDICT_BATCHES)
        + ["classify_log"] * len(warmup.CLASSIFY_BATCHES)
    )
    assert warmup.replay(model, logs) == []


def _executions(config) -> int:
    from pipeline.summary import open_store

    return len(open_store(config.metadata_path).get_executions())


def test_unchanged_rerun_reuses_the_last_run_without_starting_tfx(
    first_run, config, workspace, components
):
    executions = _executions(config)
    second = local.run(config, workspace / "runs")
    assert second["status"] == "succeeded"
    assert second["run_id"] != first_run["run_id"]
    assert second["reused_run"] == first_run["run_id"] and second["all_cached"] is True
    assert _states(second) == {name: ["cached"] for name in components}
    assert second["eval_metrics"] == first_run["eval_metrics"]
    assert second["report_file"] == first_run["report_file"]
    assert json.loads(pathlib.Path(second["summary_file"]).read_text()) == second
    assert _executions(config) == executions  # the store is untouched: TFX never started
    assert _versions(config) == [first_run["pushed_version"]]


def test_unchanged_rerun_without_reuse_is_fully_cached_by_tfx(
    first_run, config, workspace, components
):
    second = local.run(config, workspace / "runs", reuse=False)
    assert second["status"] == "succeeded"
    assert "reused_run" not in second and second["all_cached"] is True
    states = _states(second)
    assert states.pop(NodeId.BASELINE_RESOLVER) == ["ran"]
    assert states == {name: ["cached"] for name in components - {NodeId.BASELINE_RESOLVER}}
    assert _versions(config) == [first_run["pushed_version"]]

    # TFX's run changed the store and is recorded in its turn: the next run reuses it.
    assert local.run(config, workspace / "runs")["reused_run"] == second["run_id"]


def test_unreachable_auc_floor_blocks_the_push_and_says_why(first_run, config, workspace):
    strict = dataclasses.replace(config, min_eval_auc=0.99)
    result = local.run(strict, workspace / "runs")
    assert result["status"] == "succeeded"
    assert _states(result)[NodeId.TRAINER] == ["cached"]
    assert _states(result)[NodeId.EVALUATOR] == ["ran"]
    assert result["blessed"] is False and result["pushed"] is False
    assert any(
        "auc" in reason and "below the floor 0.99" in reason
        for reason in result["validation"]["failures"]
    )
    assert _versions(config) == [first_run["pushed_version"]]
    assert result["mobile"] == {
        "published": False,
        "destination": None,
        "reason": "the model was not blessed",
        "variants": {},
    }
    assert _versions(config, config.mobile_model_dir) == [first_run["pushed_version"]]


def test_a_new_model_is_compared_with_the_latest_blessed_one(first_run, config, workspace):
    retrained = dataclasses.replace(
        config,
        max_auc_drop=1.0,  # any change passes: this checks the comparison is made
        training=dataclasses.replace(config.training, max_epochs=1),
    )
    result = local.run(retrained, workspace / "runs")
    assert result["status"] == "succeeded", result["error"]
    assert _states(result)[NodeId.TRAINER] == ["ran"]
    assert result["baseline_model"] is not None
    assert result["baseline_model"] != first_run["baseline_model"]  # None the first time
    assert result["blessed"] is True and result["pushed"] is True
    overall = result["eval_metrics"]["overall"]
    assert 0.5 <= overall["auc"] <= 1.0
    assert "auc_diff" in overall and "auc_diff" not in first_run["eval_metrics"]["overall"]
    assert _versions(config) == sorted([first_run["pushed_version"], result["pushed_version"]])
    assert _versions(config, config.mobile_model_dir) == _versions(config)


def _redeliver_may(config, workspace, change) -> None:
    """Re-delivers the newest month from its pristine copy, changed by `change(table, frame)`."""
    import pandas as pd

    drop = pathlib.Path(config.landing_root) / str(MAY)
    for table, name in landing.DROP_FILES.items():
        frame = pd.read_csv(workspace / "pristine-may" / name, low_memory=False)
        frame = change(table, frame)
        (drop / name).unlink()
        frame.to_csv(drop / name, index=False)


def _celsius(table, frame):
    if table == "weather":
        frame = frame.assign(temp=(frame["temp"] - 32) * 5 / 9)
    return frame


def _no_distance(table, frame):
    return frame.drop(columns=["distance"]) if table == "flights" else frame


def _repeated_rows(table, frame):
    """Flights appended twice over (an upstream export re-run onto the same file)."""
    return frame.iloc[[*range(len(frame)), 0, 5, 9]] if table == "flights" else frame


@pytest.mark.parametrize(
    "change, named",
    [(_no_distance, "distance"), (_repeated_rows, "3 row(s) repeat a flight listed before")],
    ids=["missing-column", "repeated-rows"],
)
def test_a_bad_drop_stops_ingestion_naming_the_month_file_and_problem(
    first_run, config, workspace, change, named
):
    before = _versions(config)
    _redeliver_may(config, workspace, change)
    result = local.run(config, workspace / "runs")
    assert result["status"] == "failed"
    for text in ("month 2013-05", "flights.csv", named):
        assert text in result["error"]
    states = _states(result)
    assert states[month_node(NodeId.EXAMPLE_GEN, MAY)] == ["failed"]
    assert NodeId.TRAINER not in states and NodeId.PUSHER not in states
    assert _versions(config) == before


def test_a_month_in_celsius_is_blocked_naming_temp_and_goes_on_with_warn(
    first_run, config, workspace
):
    before = _versions(config)
    _redeliver_may(config, workspace, _celsius)
    blocked = local.run(config, workspace / "runs")
    assert blocked["status"] == "failed"
    for text in ("DriftFound", "month 2013-05", "feature 'temp'", "Jensen-Shannon", "threshold"):
        assert text in blocked["error"]
    states = _states(blocked)
    assert states[NodeId.DATA_VALIDATOR] == ["failed"]
    assert NodeId.TRANSFORM not in states and NodeId.PUSHER not in states
    assert _versions(config) == before

    warned = local.run(
        dataclasses.replace(config, drift_action=DriftAction.WARN), workspace / "runs"
    )
    assert warned["status"] == "succeeded", warned["error"]
    drift = warned["data"]["drift"]
    assert [(f["month"], f["feature"]) for f in drift] == [("2013-05", "temp")]
    states = _states(warned)
    # The training window is unchanged: only what reads the evaluation months re-runs.
    assert states[NodeId.TRANSFORM] == ["cached"] and states[NodeId.TRAINER] == ["cached"]
    assert states[NodeId.EVALUATOR] == ["ran"]


def test_lineage_of_the_pushed_version_names_its_spans_settings_and_blessing(
    first_run, config, workspace, capsys
):
    from pipeline import lineage

    version = first_run["pushed_version"]
    result = lineage.lineage(config.metadata_path, version)
    assert result["kind"] == f"serving and mobile version {version}"
    assert [(m["span"], m["role"]) for m in result["months"]] == [
        (201301, "training"),
        (201302, "training"),
        (201303, "validation"),
        (201304, "evaluation"),
        (201305, "evaluation"),
    ]
    assert all(m["landing"] and m["statistics_uri"] for m in result["months"])
    assert result["model"]["uri"] == first_run["model_uri"]
    hyperparameters = result["hyperparameters"]
    best = pathlib.Path(hyperparameters["uri"]) / "best_hyperparameters.txt"
    assert hyperparameters["values"] == json.loads(best.read_text())["values"]
    assert hyperparameters["trial"] is not None
    evaluation = result["evaluation"]
    assert evaluation["blessed"] is True and evaluation["baseline_model"] is None
    assert evaluation["months"] == ["2013-04", "2013-05"]
    assert result["infra_validation"]["ok"] is True
    assert result["push"]["destination"] == first_run["pushed_destination"]
    assert result["mobile"]["destination"] == first_run["mobile"]["destination"]
    text = lineage.format_lineage(result)
    assert "training 2013-01..2013-02; validation 2013-03; evaluation 2013-04..2013-05" in text
    # A later version (the retrained model, when that test ran) names this one as its champion.
    for later in set(_versions(config)) - {version}:
        champion = lineage.lineage(config.metadata_path, later)["evaluation"]["baseline_model"]
        assert champion["pushed_version"] == version
    april = lineage.spans(config.metadata_path, "2013-04")
    assert first_run["model_uri"] in [e["model"]["uri"] for e in april["evaluated"]]

    assert lineage.main(["1", "--output-dir", str(workspace)]) == 2
    error = capsys.readouterr().err
    assert "no pushed version and no artifact URI '1'" in error
    assert config.metadata_path in error and version in error


def test_the_pushed_version_has_a_valid_model_card_with_the_evaluations_auc(first_run, config):
    from pipeline import model_card

    version = first_run["pushed_version"]
    served = pathlib.Path(config.serving_model_dir) / version / model_card.SERVING_CARD_DIR
    card = json.loads((served / model_card.JSON_FILE).read_text())
    model_card.validate(card)
    overall = {
        m["type"]: m["value"]
        for m in card["quantitative_analysis"]["performance_metrics"]
        if m["slice"] == model_card.OVERALL
    }
    assert overall["auc"] == first_run["candidate_auc"]
    assert overall["example_count"] == 2 * ROWS_PER_MONTH
    assert card["model_details"]["version"]["name"] == version
    mobile = pathlib.Path(config.mobile_model_dir) / version / model_card.JSON_FILE
    assert mobile.read_bytes() == (served / model_card.JSON_FILE).read_bytes()
    assert (served / model_card.HTML_FILE).exists() and (served / model_card.MARKDOWN_FILE).exists()


def test_the_run_report_is_one_self_contained_page_that_renders_offline(first_run, tmp_path):
    from browser import colours, parse_page, render

    page = pathlib.Path(first_run["report_file"])
    assert page == pathlib.Path(first_run["summary_file"]).with_name("report.html")
    html = page.read_text()
    parsed = parse_page(html)
    assert parsed.sections == [
        "data",
        "tuning",
        "training",
        "evaluation",
        "serving",
        "replay",
        "components",
    ]
    # Rows per month, one distribution per feature, loss/AUC, ROC, calibration, slices.
    assert len(parsed.images) == 1 + len(F.FEATURES) + 4
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert parsed.external() == [] and parsed.scripts == 0 and parsed.links == 0
    assert "Could not build" not in html and "no ROC or calibration plots" not in html
    assert 'alt="ROC curve"' in html and 'alt="reliability diagram"' in html
    assert f"Pushed version {first_run['pushed_version']}" in html

    rendered = render(page, tmp_path / "report.png")
    assert rendered.console == [], rendered.log[-3000:]
    assert colours(rendered.screenshot) > 100  # text and plots, not a blank page


def test_served_real_nov_dec_traffic_logged_by_the_dev_server_monitors_healthy(
    first_run, config, workspace
):
    """Issue 13: the pushed version behind the dev server with request logging on, real
    Nov-Dec flights as predict rows and classify examples; the monitoring job finds the
    version's training statistics through ML Metadata and reports healthy (exit 0)."""
    import prediction_logs

    from pipeline import monitor
    from serving import request_log
    from serving.client import RestClient
    from serving.dev_server import DevServer

    year = prediction_logs.year_rows()
    rows = year[year.month >= 11].sample(1200, random_state=7).drop(columns=[F.LABEL_KEY])
    records = [
        {k: (None if v is None or (isinstance(v, float) and v != v) else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    logs = workspace / "request_logs"
    log_config = request_log.RequestLogConfig(log_dir=str(logs), sampling_rate=1.0)
    with (
        DevServer(
            config.pipeline_name,
            config.serving_model_dir,
            rest_port=0,
            grpc_port=0,
            request_log_config=log_config,
        ) as server,
        RestClient(f"http://127.0.0.1:{server.rest_port}", config.pipeline_name) as client,
    ):
        for n, first in enumerate(range(0, len(records), 20)):
            batch = records[first : first + 20]
            answers = client.classify(batch) if n % 2 else client.predict(batch)
            assert len(answers) == len(batch)
    assert len(request_log.read(request_log.log_files(str(logs)))) == 60

    code = monitor.main(["--logs", str(logs), "--output-dir", str(workspace)])
    (report_file,) = (workspace / "monitor").glob(f"*/{monitor.REPORT_FILE}")
    report = json.loads(report_file.read_text())
    assert code == monitor.EXIT_HEALTHY, [c for c in report["checks"] if c["verdict"] == "alert"]
    # The dev server serves the newest version (a later test may have pushed one).
    assert report["model"]["version"] == max(_versions(config), key=int)
    assert report["counts"]["requests"] == 60 and report["counts"]["rows"] == 1200
    assert {c["kind"] for c in report["checks"]} >= {"skew", "missing", "prediction"}
