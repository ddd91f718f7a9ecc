"""What a mobile team receives: the accepted variants, labels, contract and metrics, the
contract last and naming the model."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from mobile import publish, runtime
from models.constants import PREDICT_SIGNATURE
from serving import push

pytestmark = pytest.mark.component


def _work(built, tf_transform_output, tmp_path, results=None) -> pathlib.Path:
    """A copy of the converted variants with their documents, as MobileExport leaves them."""
    converted, baseline, work = built
    copy = tmp_path / "mobile_models"
    shutil.copytree(work, copy)
    doc = publish.contract(tf_transform_output, "trained on Jan, evaluated on Nov")
    publish.write(str(copy), results or list(converted.values()), baseline, doc)
    return copy


def test_only_accepted_variants_are_published_with_their_documents(
    built, tf_transform_output, tmp_path
):
    results, _, _ = built
    broken = results["uncalibrated_int8"]
    folder = publish.folder(str(_work(built, tf_transform_output, tmp_path)), str(tmp_path / "m"))
    model = {"model_uri": "/pipeline/Trainer/model/3", "model_fingerprint": "123-456"}
    assert folder.content(7, model)[-1][0] == publish.CONTRACT_FILE  # the marker comes last
    published = push.publish([folder], model, version=7)
    destination = pathlib.Path(published.targets[0])
    assert destination == tmp_path / "m" / "7"
    files = {p.name for p in destination.iterdir()}
    accepted = {n for n, r in results.items() if r.published}
    assert files == {runtime.file_name(n) for n in accepted} | {
        "labels.txt",
        "contract.json",
        "metrics.json",
    }
    assert runtime.file_name("uncalibrated_int8") not in files
    metrics = json.loads((destination / "metrics.json").read_text())
    assert metrics["variants"]["uncalibrated_int8"]["reason"] == broken.reason
    assert (destination / "labels.txt").read_text() == "on_time\ndelayed\n"
    contract = json.loads((destination / "contract.json").read_text())
    assert {k: contract[k] for k in ("version", *model)} == {"version": 7, **model}
    assert push.publish([folder], model).written == [False]  # the contract names the model


def test_nothing_is_published_when_no_variant_passed(built, tf_transform_output, tmp_path):
    results, _, _ = built
    rejected = [r for r in results.values() if not r.published]
    work = _work(built, tf_transform_output, tmp_path, rejected)
    assert publish.folder(str(work), str(tmp_path / "m")) is None


def test_contract_agrees_with_the_tflite_signature(built, tf_transform_output):
    _, _, work = built
    doc = publish.contract(tf_transform_output, "trained on Jan, evaluated on Nov")
    runner = runtime.interpreter(
        runtime.read(str(work / runtime.file_name("float32")))
    ).get_signature_runner(PREDICT_SIGNATURE)
    details = runner.get_input_details()
    numpy_dtypes = {"string": np.bytes_, "int64": np.int64, "float32": np.float32}
    assert {i["name"] for i in doc["inputs"]} == set(details)
    for entry in doc["inputs"]:
        actual = details[entry["name"]]
        assert actual["dtype"] == numpy_dtypes[entry["dtype"]], entry["name"]
        assert actual["shape_signature"].tolist() == entry["shape"]
    (output,) = doc["outputs"]
    assert list(runner.get_output_details()) == [output["name"]]
    carrier = next(i for i in doc["inputs"] if i["name"] == "carrier")
    assert carrier["vocabulary"] == [
        v.decode() for v in tf_transform_output.vocabulary_by_name("carrier")
    ]
    plane_age = next(i for i in doc["inputs"] if i["name"] == "plane_age")
    assert plane_age["missing_value"] == "NaN" and plane_age["required"] is False
