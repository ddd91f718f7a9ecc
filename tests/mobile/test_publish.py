"""What a mobile team receives: the accepted variants, labels, contract and metrics."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from mobile import publish, runtime
from models.constants import PREDICT_SIGNATURE

pytestmark = pytest.mark.component


def test_only_accepted_variants_are_published_with_their_documents(built, tmp_path):
    results, baseline, work = built
    broken = results["uncalibrated_int8"]
    destination = publish.publish(
        list(results.values()), str(work), str(tmp_path / "mobile"), 7, {"version": 7}, baseline
    )
    assert destination == str(tmp_path / "mobile" / "7")
    files = {p.name for p in pathlib.Path(destination).iterdir()}
    published = {n for n, r in results.items() if r.published}
    assert files == {runtime.file_name(n) for n in published} | {
        "labels.txt",
        "contract.json",
        "metrics.json",
    }
    assert runtime.file_name("uncalibrated_int8") not in files
    metrics = json.loads((pathlib.Path(destination) / "metrics.json").read_text())
    assert metrics["variants"]["uncalibrated_int8"]["reason"] == broken.reason
    assert (pathlib.Path(destination) / "labels.txt").read_text() == "on_time\ndelayed\n"


def test_nothing_is_published_when_no_variant_passed(built, tmp_path):
    results, baseline, work = built
    rejected = [r for r in results.values() if not r.published]
    assert publish.publish(rejected, str(work), str(tmp_path / "mobile"), 7, {}, baseline) is None
    assert not (tmp_path / "mobile" / "7").exists()


def test_contract_agrees_with_the_tflite_signature(built, tf_transform_output):
    _, _, work = built
    doc = publish.contract(tf_transform_output, 7, "trained on Jan, evaluated on Nov")
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
