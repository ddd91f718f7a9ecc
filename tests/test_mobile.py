"""TFLite variants on a small trained model: conversion, tflite-runtime, parity, gates,
publication and the mobile contract."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from artifacts import make_artifact
from mobile import convert
from mobile.encoder import BuiltinTransform
from models.model import OUTPUT_KEY
from pipeline import data
from pipeline.components import MobileExport, MobileModels
from serving import codec
from transforms import features as F

CONFIG = convert.MobileConfig(min_parity_rows=500, representative_rows=100, latency_runs=30)


def _uncalibrated_int8(converter, representative) -> bytes:
    """A variant the converter refuses: full-integer quantization without calibration data."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.int8]
    return converter.convert()


@pytest.fixture(scope="module")
def records(flight_rows) -> list[bytes]:
    return data.encode_examples(flight_rows)


@pytest.fixture(scope="module")
def built(saved_model_dir, transform_output_dir, records, tmp_path_factory):
    work = tmp_path_factory.mktemp("mobile_work")
    variants = {**convert.VARIANTS, "uncalibrated_int8": _uncalibrated_int8}
    results, baseline = convert.build_variants(str(saved_model_dir), str(transform_output_dir),
                                               records, records[:100], str(work), CONFIG,
                                               variants)
    return {r.variant: r for r in results}, baseline, work


def test_every_variant_converts_and_answers_in_tflite_runtime(built, records):
    results, baseline, work = built
    assert baseline["rows"] == len(records)
    for name in convert.VARIANTS:
        result = results[name]
        assert result.auc is not None and 0.5 < result.auc <= 1.0, result
        assert result.latency_p50_ms > 0 and result.latency_p99_ms >= result.latency_p50_ms
        assert (work / convert.file_name(name)).stat().st_size == result.size_bytes
        scores = convert.predict(convert.read(str(work / convert.file_name(name))),
                                 codec.columns_from_examples(records[:7]))
        assert scores.shape == (7,) and np.all((scores >= 0) & (scores <= 1))
    assert results["float16"].size_bytes < results["float32"].size_bytes
    assert results["dynamic_int8"].size_bytes < results["float32"].size_bytes


def test_float32_matches_the_saved_model_on_raw_rows(built, saved_model_dir, records):
    results, _, work = built
    columns = codec.columns_from_examples(records)
    expected = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in columns.items()})[OUTPUT_KEY].numpy()
    tflite = convert.predict(convert.read(str(work / convert.file_name("float32"))), columns)
    np.testing.assert_allclose(tflite, expected, atol=1e-4)
    assert results["float32"].published and results["float32"].max_abs_diff <= 1e-4


def test_builtin_transform_reproduces_tf_transform(tf_transform_output, saved_model_dir,
                                                   records):
    transform = tf.saved_model.load(str(saved_model_dir)).signatures["transform_features"]
    expected = transform(examples=tf.constant(records))
    columns = codec.columns_from_examples(records)
    ours = BuiltinTransform(tf_transform_output)({k: tf.constant(v) for k, v in columns.items()})
    assert set(ours) == set(expected) - {F.LABEL_KEY}
    for name, values in ours.items():
        np.testing.assert_allclose(values.numpy(), expected[name].numpy(), atol=1e-5,
                                   err_msg=name)
    # Unseen and absent categories take the same buckets as in tf.Transform.
    odd = dict(columns, carrier=np.array([b"ZZ"] * len(records), dtype=object),
               plane_type=np.array([b""] * len(records), dtype=object))
    ours = BuiltinTransform(tf_transform_output)({k: tf.constant(v) for k, v in odd.items()})
    odd_examples = codec.examples_from_columns(odd)
    for example in odd_examples:  # transform_features parses the label too
        example.features.feature[F.LABEL_KEY].int64_list.value.append(0)
    expected = transform(examples=tf.constant([e.SerializeToString() for e in odd_examples]))
    for name in ("carrier_xf", "plane_type_xf", "origin_x_dest_xf"):
        np.testing.assert_array_equal(ours[name].numpy(), expected[name].numpy())
    assert set(ours["carrier_xf"].numpy()) == {
        tf_transform_output.vocabulary_size_by_name("carrier")}


def test_a_variant_that_cannot_convert_is_reported_and_the_others_are_published(
        built, tmp_path):
    results, baseline, work = built
    broken = results["uncalibrated_int8"]
    assert not broken.published and broken.reason.startswith("conversion failed: ")
    assert broken.size_bytes is None

    destination = convert.publish(list(results.values()), str(work), str(tmp_path / "mobile"),
                                  7, {"version": 7}, baseline)
    assert destination == str(tmp_path / "mobile" / "7")
    files = {p.name for p in pathlib.Path(destination).iterdir()}
    published = {n for n, r in results.items() if r.published}
    assert files == {convert.file_name(n) for n in published} | {
        "labels.txt", "contract.json", "metrics.json"}
    assert convert.file_name("uncalibrated_int8") not in files
    metrics = json.loads((pathlib.Path(destination) / "metrics.json").read_text())
    assert metrics["variants"]["uncalibrated_int8"]["reason"] == broken.reason
    assert (pathlib.Path(destination) / "labels.txt").read_text() == "on_time\ndelayed\n"


def test_gate_rejects_a_quantized_variant_below_its_measured_drop(built):
    results, baseline, _ = built
    for name in ("float16", "dynamic_int8", "int8"):
        result = results[name]
        drop = baseline["auc"] - result.auc
        strict = dataclasses.replace(CONFIG, auc_tolerance=drop - 1e-4)
        assert convert._gate(name, result, baseline, strict)[0] is False
        loose = dataclasses.replace(CONFIG, auc_tolerance=max(drop, 0) + 1e-4)
        assert convert._gate(name, result, baseline, loose)[0] is True
    too_few = dataclasses.replace(CONFIG, min_parity_rows=10_000)
    ok, reason = convert._gate("float32", results["float32"], baseline, too_few)
    assert not ok and "parity needs 10000 eval rows" in reason


def test_contract_agrees_with_the_tflite_signature(built, tf_transform_output):
    _, _, work = built
    doc = convert.contract(tf_transform_output, 7, "trained on Jan, evaluated on Nov")
    runner = convert.interpreter(convert.read(str(work / convert.file_name("float32")))
                                 ).get_signature_runner(convert.SIGNATURE)
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
    assert carrier["vocabulary"] == [v.decode() for v in
                                     tf_transform_output.vocabulary_by_name("carrier")]
    plane_age = next(i for i in doc["inputs"] if i["name"] == "plane_age")
    assert plane_age["missing_value"] == "NaN" and plane_age["required"] is False


def test_nothing_is_converted_or_published_for_an_unblessed_model(tmp_path):
    out = make_artifact(MobileModels, tmp_path / "out")
    blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=0)
    pushed = make_artifact(standard_artifacts.PushedModel, tmp_path, pushed=0)
    inputs = {"model": [make_artifact(standard_artifacts.Model, tmp_path)],
              "transform_graph": [make_artifact(standard_artifacts.TransformGraph, tmp_path)],
              "examples": [make_artifact(standard_artifacts.Examples, tmp_path)],
              "model_blessing": [blessing], "pushed_model": [pushed]}
    MobileExport.EXECUTOR_SPEC.executor_class().Do(
        inputs, {"mobile_models": [out]},
        {"mobile_model_dir": str(tmp_path / "mobile"), "data_span": "",
         "config_json": json.dumps(dataclasses.asdict(CONFIG))})
    assert out.get_int_custom_property("published") == 0
    assert out.get_string_custom_property("reason") == "the model was not blessed"
    assert not (tmp_path / "mobile").exists()

