"""The hermetic serving export: signatures, method names and raw-feature contract."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import export
from models.constants import (
    CLASSIFY_METHOD,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    EXAMPLES_SIGNATURE,
    OUTPUT_KEY,
    PREDICT_SIGNATURE,
    SIGNATURES,
    TRANSFORM_SIGNATURE,
)
from pipeline import data
from serving import contract
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.component


def _dense_request(rows) -> dict[str, tf.Tensor]:
    """Rows as TF Serving `instances` would carry them: NaN / "" for absent values."""
    request = {}
    for feature in F.FEATURES:
        column = rows[feature.name]
        if feature.dtype is str:
            request[feature.name] = tf.constant(column.fillna("").astype(str).tolist())
        elif feature.dtype is int:
            request[feature.name] = tf.constant(column.astype(np.int64).to_numpy())
        else:
            request[feature.name] = tf.constant(column.astype(np.float32).to_numpy())
    return request


def test_export_serves_raw_features_and_examples_without_the_transform_output(
    trained_model, transform_output_dir, flight_rows, tmp_path
):
    # A private copy of the transform output, deleted after export: nothing but the
    # SavedModel may be needed from then on (the shared fixture stays untouched).
    private = tmp_path / "transform_graph"
    shutil.copytree(transform_output_dir, private)
    tf_transform_output = tft.TFTransformOutput(str(private))
    export_dir = str(tmp_path / "saved_model")
    export.export(trained_model, tf_transform_output, export_dir)

    # What the model predicts in-process on the same rows, for comparison.
    raw = tf.io.parse_example(data.encode_examples(flight_rows), F.raw_feature_spec())
    transformed = tf_transform_output.transform_raw_features(raw)
    inputs = {k: transformed[k] for k in trained_model.input_names}
    expected = trained_model(inputs).numpy().ravel()

    shutil.rmtree(private)  # hermetic: nothing but the SavedModel from here on
    loaded = tf.saved_model.load(export_dir)
    assert set(loaded.signatures) == set(SIGNATURES)
    by_examples = loaded.signatures[EXAMPLES_SIGNATURE](
        examples=tf.constant(data.encode_examples(flight_rows))
    )
    by_raw = loaded.signatures[PREDICT_SIGNATURE](**_dense_request(flight_rows))
    transformed_sig = loaded.signatures[TRANSFORM_SIGNATURE](
        examples=tf.constant(data.encode_examples(flight_rows))
    )

    np.testing.assert_allclose(by_examples[OUTPUT_KEY].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(by_raw[OUTPUT_KEY].numpy(), expected, atol=1e-5)
    assert by_raw[OUTPUT_KEY].shape == (len(flight_rows),)
    assert np.all((expected > 0) & (expected < 1))
    np.testing.assert_array_equal(
        transformed_sig[F.missing_indicator_name("plane_age")].numpy(),
        flight_rows["plane_age"].isna().to_numpy(np.float32),
    )


def test_serving_signature_input_contract(saved_model_dir):
    signature = tf.saved_model.load(str(saved_model_dir)).signatures[PREDICT_SIGNATURE]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {f.name for f in F.FEATURES}
    assert F.LABEL_KEY not in inputs
    assert inputs["carrier"].dtype == tf.string and inputs["distance"].dtype == tf.float32
    assert inputs["sched_dep_time"].dtype == tf.int64
    assert all(spec.shape.as_list() == [None] for spec in inputs.values())
    assert list(signature.structured_outputs) == [OUTPUT_KEY]


def test_classify_signature_carries_tf_servings_classify_method_name(saved_model_dir):
    signatures = contract.signature_defs(str(saved_model_dir))
    assert signatures[CLASSIFY_SIGNATURE].method_name == CLASSIFY_METHOD
    assert CLASSIFY_METHOD == "tensorflow/serving/classify"
    assert all(
        signatures[key].method_name == "tensorflow/serving/predict"
        for key in SIGNATURES
        if key != CLASSIFY_SIGNATURE
    )


def test_classify_scores_are_the_predicted_probabilities(saved_model_dir, records):
    loaded = tf.saved_model.load(str(saved_model_dir))
    expected = loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(records[:20]))[
        OUTPUT_KEY
    ].numpy()
    out = loaded.signatures[CLASSIFY_SIGNATURE](inputs=tf.constant(records[:20]))
    classes, scores = (out[key].numpy() for key in CLASSIFY_OUTPUTS)
    assert classes[0].tolist() == [c.encode() for c in F.LABEL_CLASSES]
    np.testing.assert_allclose(scores[:, 1], expected, atol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)


# --- Non-finite numbers (codec.NON_FINITE_RULES), enforced by every signature ------------------

FLOATS = [f for f in F.FEATURES if f.dtype is float]


def _examples_with(records, feature: str, value: float | None) -> tf.Tensor:
    """records[:3] as serialized tf.Examples, row 1's `feature` set to [value] (None: absent)."""
    examples = [tf.train.Example.FromString(r) for r in records[:3]]
    examples[1].features.feature.pop(feature, None)
    if value is not None:
        examples[1].features.feature[feature].float_list.value.append(value)
    return tf.constant([e.SerializeToString() for e in examples])


def _by_signature(loaded, columns, examples) -> dict:
    """Signature key -> a call of it on the same three rows."""
    return {
        PREDICT_SIGNATURE: lambda: loaded.signatures[PREDICT_SIGNATURE](
            **{k: tf.constant(v) for k, v in columns.items()}
        ),
        EXAMPLES_SIGNATURE: lambda: loaded.signatures[EXAMPLES_SIGNATURE](examples=examples),
        CLASSIFY_SIGNATURE: lambda: loaded.signatures[CLASSIFY_SIGNATURE](inputs=examples),
        TRANSFORM_SIGNATURE: lambda: loaded.signatures[TRANSFORM_SIGNATURE](examples=examples),
    }


def test_every_signature_refuses_non_finite_values_naming_the_feature_row_and_value(
    saved_model_dir, records
):
    loaded = tf.saved_model.load(str(saved_model_dir))
    base = codec.columns_from_examples(records[:3])
    checked = 0
    for feature in FLOATS:
        invalid = [math.inf, -math.inf] + ([] if feature.optional else [math.nan])
        for value in invalid:
            columns = {k: v.copy() for k, v in base.items()}
            columns[feature.name][1] = value
            examples = _examples_with(records, feature.name, value)
            for key, call in _by_signature(loaded, columns, examples).items():
                with pytest.raises(tf.errors.InvalidArgumentError) as error:
                    call()
                message = error.value.message
                assert f"Invalid value for feature {feature.name}: " in message, (key, message)
                assert codec.NON_FINITE_RULES[feature.optional] in message
                assert f"[rows:] [1] [values:] [{value}]" in message, (key, message)
                checked += 1
    assert checked == 4 * sum(2 if f.optional else 3 for f in FLOATS)


def test_nan_in_an_optional_feature_means_absent_in_every_signature(saved_model_dir, records):
    loaded = tf.saved_model.load(str(saved_model_dir))
    columns = codec.columns_from_examples(records[:3])
    for feature in (f for f in FLOATS if f.optional):
        nan = _by_signature(loaded, columns, _examples_with(records, feature.name, math.nan))
        absent = _by_signature(loaded, columns, _examples_with(records, feature.name, None))
        for key in (EXAMPLES_SIGNATURE, CLASSIFY_SIGNATURE, TRANSFORM_SIGNATURE):
            got, expected = nan[key](), absent[key]()
            for name in expected:
                np.testing.assert_array_equal(got[name].numpy(), expected[name].numpy())
        indicator = F.missing_indicator_name(feature.name)
        if indicator in expected:
            assert expected[indicator].numpy()[1] == 1.0
