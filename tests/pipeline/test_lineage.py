"""Lineage read back from a small ML Metadata store laid out like the pipeline's (node contexts,
events with the components' input and output keys, the custom properties the components set):
two models, the older one the champion that the newer one is compared with."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from pipeline import lineage
from pipeline.config import local_config
from pipeline.constants import NodeId, month_node
from pipeline.months import Month

pytestmark = pytest.mark.unit

MONTHS = [Month(2013, m) for m in (1, 2, 3, 4)]
DELIVERED = 1796039831  # 2026-11-30 11:57:11 UTC
HYPERPARAMETERS = {"learning_rate": 0.003, "hidden_units": 64}
CHAMPION, CANDIDATE = "1764400000", "1764500000"


class _Store:
    """Writes executions the way TFX records them: one node context per component, one
    pipeline_run context per run, INPUT/OUTPUT events keyed by the component's channel."""

    def __init__(self, path: pathlib.Path, root: pathlib.Path):
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self.root = root
        self.types: dict[str, int] = {}
        self.contexts: dict[tuple[str, str], pb.Context] = {}
        self.run = self._context("pipeline_run", "run-1")
        self.count = 0

    def _type(self, kind: str, name: str, **properties) -> int:
        if (kind, name) not in self.types:
            put = {
                "artifact": (pb.ArtifactType, self.store.put_artifact_type),
                "execution": (pb.ExecutionType, self.store.put_execution_type),
                "context": (pb.ContextType, self.store.put_context_type),
            }[kind]
            type_ = put[0](name=name)
            for key, value in properties.items():
                type_.properties[key] = value
            self.types[kind, name] = put[1](type_)
        return self.types[kind, name]

    def _context(self, kind: str, name: str) -> pb.Context:
        if (kind, name) not in self.contexts:
            context = pb.Context(type_id=self._type("context", kind), name=name)
            context.id = self.store.put_contexts([context])[0]
            self.contexts[kind, name] = context
        return self.contexts[kind, name]

    def new_run(self, name: str) -> None:
        self.run = self._context("pipeline_run", name)

    def execute(self, node: str, inputs=None, outputs=None, properties=None) -> dict:
        """Records one execution of `node`; `outputs`: key -> (type, custom properties, files);
        returns key -> the new artifact (with its id)."""
        execution = pb.Execution(
            type_id=self._type("execution", node.split("_")[0]),
            last_known_state=pb.Execution.COMPLETE,
        )
        for key, value in (properties or {}).items():
            execution.custom_properties[key].string_value = value
        pairs = []
        for key, artifact in (inputs or {}).items():
            event = pb.Event(type=pb.Event.INPUT)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            pairs.append((artifact, event))
        made = {}
        for key, (type_name, custom, files) in (outputs or {}).items():
            self.count += 1
            uri = self.root / node / key / str(self.count)
            uri.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (uri / name).write_text(json.dumps(content))
            artifact = pb.Artifact(
                type_id=self._type(
                    "artifact", type_name, span=pb.INT, version=pb.INT, split_names=pb.STRING
                ),
                uri=str(uri),
                state=pb.Artifact.LIVE,
            )
            for name, value in custom.items():
                if name in ("span", "version"):
                    artifact.properties[name].int_value = value
                elif isinstance(value, int):
                    artifact.custom_properties[name].int_value = value
                else:
                    artifact.custom_properties[name].string_value = value
            event = pb.Event(type=pb.Event.OUTPUT)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            made[key] = artifact
            pairs.append((artifact, event))
        contexts = [self._context("node", f"flight_delay.{node}"), self.run]
        _, ids, _ = self.store.put_execution(execution, pairs, contexts)
        result = {}
        for (artifact, _), artifact_id in zip(pairs, ids, strict=True):
            artifact.id = artifact_id
        for key, artifact in made.items():
            result[key] = artifact
        return result


def _model_run(s: _Store, tmp: pathlib.Path, months, version, champion=None, blessed=True):
    """One run: the months' ExampleGen/StatisticsGen, DataValidator, windows (all months but
    the last two train, the second last validates, the last evaluates), Transform, Tuner,
    Trainer, Evaluator (against `champion`), InfraValidator, MobileExport and Pusher."""
    examples, statistics = {}, {}
    for month in months:
        examples[month] = s.execute(
            month_node(NodeId.EXAMPLE_GEN, month),
            outputs={"examples": ("Examples", {"span": month.span, "version": DELIVERED}, {})},
            properties={"input_base": str(tmp / "landing")},
        )["examples"]
        statistics[month] = s.execute(
            month_node(NodeId.STATISTICS_GEN, month),
            inputs={"examples": examples[month]},
            outputs={"statistics": ("ExampleStatistics", {"span": month.span}, {})},
        )["statistics"]
    schema = s.execute(NodeId.SCHEMA_GEN, outputs={"schema": ("Schema", {}, {})})["schema"]
    drift = {
        "month": str(months[1]),
        "feature": "temp",
        "kind": "drift",
        "description": "The Jensen-Shannon divergence is 0.2 (up to six significant digits), "
        "above the threshold 0.1.",
    }
    s.execute(
        NodeId.DATA_VALIDATOR,
        inputs={"schema": schema, **{f"month_{i}": statistics[m] for i, m in enumerate(months)}},
        outputs={
            "anomalies": ("ExampleAnomalies", {"drift_findings": 1}, {"findings.json": [drift]})
        },
        properties={"months": json.dumps([str(m) for m in months]), "drift_action": "warn"},
    )
    splits = {"train": [m.span for m in months[:-2]], "validation": [months[-2].span]}
    training = s.execute(
        NodeId.TRAINING_WINDOW,
        inputs={f"month_{i}": examples[m] for i, m in enumerate(months[:-1])},
        outputs={"examples": ("Examples", {"spans": json.dumps(splits)}, {})},
    )["examples"]
    evaluation_window = s.execute(
        NodeId.EVALUATION_WINDOW,
        inputs={"month_0": examples[months[-1]]},
        outputs={"examples": ("Examples", {"spans": json.dumps({"eval": [months[-1].span]})}, {})},
    )["examples"]
    transform = s.execute(
        NodeId.TRANSFORM,
        inputs={"examples": training, "schema": schema},
        outputs={"transform_graph": ("TransformGraph", {}, {})},  # materialize=False
    )
    tuner = s.execute(
        NodeId.TUNER,
        inputs={
            "examples": training,
            "transform_graph": transform["transform_graph"],
        },
        outputs={
            "best_hyperparameters": (
                "HyperParameters",
                {},
                {"best_hyperparameters.txt": {"space": [], "values": HYPERPARAMETERS}},
            ),
            "tuner_results": (
                "TunerResults",
                {},
                {
                    "tuner_results.json": [
                        {"trial_id": "1", "score": 0.71, **HYPERPARAMETERS},
                        {"trial_id": "0", "score": 0.69, "learning_rate": 0.01, "hidden_units": 8},
                    ]
                },
            ),
        },
    )
    model = s.execute(
        NodeId.TRAINER,
        inputs={
            "examples": training,
            "transform_graph": transform["transform_graph"],
            "hyperparameters": tuner["best_hyperparameters"],
        },
        outputs={"model": ("Model", {}, {})},
    )["model"]
    blessing_properties = {"blessed": int(blessed), "current_model": model.uri}
    evaluator_inputs = {"examples": evaluation_window, "model": model}
    if champion is not None:
        blessing_properties["baseline_model"] = champion.uri
        evaluator_inputs["baseline_model"] = champion
    evaluator = s.execute(
        NodeId.EVALUATOR,
        inputs=evaluator_inputs,
        outputs={
            "evaluation": ("ModelEvaluation", {}, {}),
            "blessing": ("ModelBlessing", blessing_properties, {}),
        },
    )
    infra = s.execute(
        NodeId.INFRA_VALIDATOR,
        inputs={"model": model, "examples": evaluation_window},
        outputs={"blessing": ("InfraBlessing", {"blessed": 1, "reason": "8 requests"}, {})},
    )["blessing"]
    variants = {
        "float32": {"published": True, "reason": "", "size_bytes": 2048, "auc": 0.7},
        "int8": {"published": False, "reason": "AUC drop 0.1 > 0.05", "size_bytes": 1024},
    }
    mobile = s.execute(
        NodeId.MOBILE_EXPORT,
        inputs={"model": model, "model_blessing": evaluator["blessing"]},
        outputs={
            "mobile_models": (
                "MobileModels",
                {"reason": ""},
                {"metrics.json": {"variants": variants}},
            )
        },
    )["mobile_models"]
    pushed = {"pushed": 0}
    if blessed:
        pushed = {
            "pushed": 1,
            "pushed_version": version,
            "pushed_destination": str(tmp / "serving_model" / "flight_delay" / version),
            "mobile_destination": str(tmp / "mobile" / "flight_delay" / version),
            "already_pushed": 0,
        }
    s.execute(
        NodeId.PUSHER,
        inputs={
            "model": model,
            "model_blessing": evaluator["blessing"],
            "infra_blessing": infra,
            "mobile_models": mobile,
        },
        outputs={"pushed_model": ("PushedModel", pushed, {})},
    )
    return model, examples


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> pathlib.Path:
    """An output folder whose store holds the champion's run (2013-01..03) and the
    candidate's (2013-01..04: trains on 01-02, validates on 03, evaluated on 04)."""
    tmp = tmp_path_factory.mktemp("lineage")
    config = local_config(tmp)
    pathlib.Path(config.metadata_path).parent.mkdir(parents=True)
    s = _Store(pathlib.Path(config.metadata_path), tmp / "pipeline_root")
    champion, _ = _model_run(s, tmp, MONTHS[:3], CHAMPION)
    s.new_run("run-2")
    _model_run(s, tmp, MONTHS, CANDIDATE, champion=champion)
    return tmp


@pytest.fixture(scope="module")
def metadata_path(output) -> str:
    return local_config(output).metadata_path


def test_a_pushed_version_leads_back_to_its_months_settings_and_evaluation(metadata_path, output):
    result = lineage.lineage(metadata_path, CANDIDATE)
    assert result["kind"] == f"serving and mobile version {CANDIDATE}"
    assert [(m["month"], m["span"], m["role"]) for m in result["months"]] == [
        ("2013-01", 201301, "training"),
        ("2013-02", 201302, "training"),
        ("2013-03", 201303, "validation"),
        ("2013-04", 201304, "evaluation"),
    ]
    assert result["training_months"] == ["2013-01", "2013-02"]
    assert result["validation_months"] == ["2013-03"]
    assert result["evaluation_months"] == ["2013-04"]
    january = result["months"][0]
    assert january["version"] == DELIVERED and january["delivered"] == "2026-11-30 11:57:11 UTC"
    assert january["landing"] == str(output / "landing" / "2013-01")
    assert "StatisticsGen_2013_01" in january["statistics_uri"]
    # The candidate run's validator (not the champion's) and its drift finding.
    assert [f["feature"] for f in result["validation"]["findings"]] == ["temp"]
    assert result["validation"]["months_checked"] == ["2013-01", "2013-02", "2013-03", "2013-04"]
    assert result["hyperparameters"]["values"] == HYPERPARAMETERS
    assert result["hyperparameters"]["trial"] == {"trial_id": "1", "score": 0.71}
    assert result["hyperparameters"]["trials"] == 2
    assert result["model"]["pushed_version"] == CANDIDATE
    evaluation = result["evaluation"]
    assert evaluation["blessed"] is True and evaluation["months"] == ["2013-04"]
    assert evaluation["baseline_model"]["pushed_version"] == CHAMPION
    assert result["infra_validation"] == {
        "uri": result["infra_validation"]["uri"],
        "ok": True,
        "detail": "8 requests",
    }
    assert result["push"]["version"] == CANDIDATE and result["push"]["pushed"] is True
    assert result["mobile"]["destination"].endswith(f"mobile/flight_delay/{CANDIDATE}")
    assert result["mobile"]["variants"]["int8"]["published"] is False
    # The champion's lineage is its own: three months, no champion before it.
    champion = lineage.lineage(metadata_path, CHAMPION)
    assert champion["evaluation_months"] == ["2013-03"]
    assert champion["evaluation"]["baseline_model"] is None


def test_a_mobile_folder_or_an_artifact_uri_finds_the_same_model(metadata_path, output):
    served = lineage.lineage(metadata_path, CANDIDATE)
    mobile = lineage.lineage(metadata_path, str(output / "mobile" / "flight_delay" / CANDIDATE))
    assert mobile["kind"] == f"mobile version {CANDIDATE}"
    by_model = lineage.lineage(metadata_path, served["model"]["uri"])
    for result in (mobile, by_model):
        assert result["model"] == served["model"]
        assert result["push"]["version"] == CANDIDATE
        assert result["evaluation"] == served["evaluation"]
    # Upstream of any model: the chain so far, and the models trained on it.
    window = lineage.lineage(metadata_path, served["months"][0]["examples_uri"])
    assert window["model"] is None
    assert [m["pushed_version"] for m in window["used_by"]] == [CANDIDATE]


def test_a_month_lists_the_models_trained_and_evaluated_on_it(metadata_path):
    march = lineage.spans(metadata_path, "2013-03")
    assert [(t["pushed_version"], t["role"]) for t in march["trained"]] == [
        (CANDIDATE, "validation")
    ]
    assert [e["model"]["pushed_version"] for e in march["evaluated"]] == [CHAMPION]
    january = lineage.spans(metadata_path, "2013-01")
    assert [(t["pushed_version"], t["role"]) for t in january["trained"]] == [
        (CHAMPION, "training"),
        (CANDIDATE, "training"),
    ]
    assert january["trained"][1]["evaluation"]["blessed"] is True
    text = lineage.format_lineage(january)
    assert "Month 2013-01 (span 201301" in text and f"pushed as version {CANDIDATE}" in text


def test_text_names_spans_hyperparameters_and_the_blessing(metadata_path):
    text = lineage.format_lineage(lineage.lineage(metadata_path, CANDIDATE))
    for expected in (
        f"serving and mobile version {CANDIDATE}",
        "2013-01  span 201301  training",
        "training 2013-01..2013-02; validation 2013-03; evaluation 2013-04",
        "drift: month 2013-02, feature 'temp'",
        "Hyperparameters (the best of 2 Tuner trials: trial 1, objective 0.7100): "
        "hidden_units=64, "
        "learning_rate=0.003",
        "BLESSED on 2013-04, compared with champion",
        f"pushed as version {CHAMPION}",
        f"Pushed: version {CANDIDATE}",
        "int8          REJECTED",
        "(AUC drop 0.1 > 0.05)",
        "checked 2013-01..2013-04): 1 finding(s)",
    ):
        assert expected in text, (expected, text)


def test_cli_prints_json_and_one_line_errors_with_exit_code_2(output, capsys):
    assert lineage.main([CANDIDATE, "--output-dir", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["push"]["version"] == CANDIDATE
    for argv, expected in (
        (["999", "--output-dir", str(output)], "no pushed version and no artifact URI '999'"),
        (["--span", "2013-09", "--output-dir", str(output)], "no Examples of month 2013-09"),
        (["--span", "2013-13", "--output-dir", str(output)], "a month is written YYYY-MM"),
        ([CANDIDATE, "--output-dir", str(output / "nowhere")], "no ML Metadata store at"),
        ([], "give either a version/URI or --span"),
    ):
        assert lineage.main(argv) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("lineage: ") and expected in error, error
    assert f"versions: {CHAMPION}, {CANDIDATE}" in _lineage_error(output)


def _lineage_error(output) -> str:
    with pytest.raises(LookupError) as error:
        lineage.lineage(local_config(output).metadata_path, "999")
    return str(error.value)


def test_importing_the_module_loads_no_tensorflow():
    code = "import sys, pipeline.lineage; sys.exit('tensorflow' in sys.modules)"
    root = pathlib.Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


@pytest.mark.parametrize("content", ["not a database", ""])
def test_a_file_that_is_not_a_store_exits_2_naming_it(tmp_path, capsys, content):
    store = pathlib.Path(local_config(tmp_path).metadata_path)
    store.parent.mkdir(parents=True)
    store.write_text(content)
    assert lineage.main(["1796040289", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{store} is not a readable ML Metadata store" in err
