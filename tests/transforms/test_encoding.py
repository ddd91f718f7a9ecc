"""The encoding rules on their own, with a recording Encoder instead of tf.Transform."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from transforms import encoding
from transforms import features as F
from transforms.encoding import Column

pytestmark = pytest.mark.unit


class _Recorder:
    """An Encoder that returns fixed ids and records which vocabularies were asked for."""

    def __init__(self):
        self.vocabularies, self.crosses, self.z = {}, {}, {}

    def vocabulary_ids(self, key, column, dtype, top_k=None):
        self.vocabularies[key] = (dtype, top_k, column)
        return tf.zeros_like(column.present, tf.int64)

    def cross_ids(self, key, columns, dtypes):
        self.crosses[key] = dtypes
        return tf.zeros_like(columns[0].present, tf.int64)

    def z_score(self, feature, x, present):
        self.z[feature.name] = (x, present)
        return tf.where(present, x, 0.0)


def _columns(batch: int = 2) -> dict[str, Column]:
    columns = {}
    for f in F.FEATURES:
        values = {str: ["JFK", ""], int: [1730, 5], float: [1.0, 0.0]}[f.dtype][:batch]
        present = [True, f.dtype is int or not f.optional][:batch]
        columns[f.name] = Column(tf.constant(values, F.tf_dtype(f.dtype)), tf.constant(present))
    return columns


def test_every_feature_kind_has_its_outputs_and_vocabularies():
    recorder = _Recorder()
    out = encoding.encode(_columns(), recorder)
    for f in F.FEATURES:
        if f.kind is F.Kind.CONTEXT:
            assert F.transformed_name(f.name) not in out
        elif f.kind is F.Kind.CLOCK:
            hour = F.transformed_name(F.clock_hour_key(f.name))
            assert {*F.clock_names(f.name), hour} <= set(out)
        else:
            assert F.transformed_name(f.name) in out
        if f.kind is F.Kind.NUMERIC:
            assert (F.missing_indicator_name(f.name) in out) is f.optional
    assert set(recorder.vocabularies) | set(recorder.crosses) == set(F.vocabulary_names())
    assert recorder.vocabularies["plane_manufacturer"][1] == F.BY_NAME["plane_manufacturer"].top_k
    assert all(t.shape == (2,) for t in out.values())


def test_numeric_inputs_are_log_compressed_and_absent_values_flagged():
    recorder = _Recorder()
    columns = _columns()
    columns["precip"] = Column(tf.constant([math.e - 1, -3.0]), tf.constant([True, True]))
    out = encoding.encode(columns, recorder)
    x, _ = recorder.z["precip"]
    np.testing.assert_allclose(x.numpy(), [1.0, 0.0], rtol=1e-6)  # log1p(max(x, 0))
    np.testing.assert_array_equal(out[F.missing_indicator_name("temp")].numpy(), [0.0, 1.0])


def test_clock_is_an_angle_of_the_minute_of_the_day_and_an_hour():
    hour, minute = encoding.clock_parts(tf.constant([1730, 5, 2359], tf.int64))
    assert hour.numpy().tolist() == [17, 0, 23] and minute.numpy().tolist() == [30, 5, 59]
    angle = encoding.clock_angle(hour, minute).numpy()
    np.testing.assert_allclose(angle, 2 * math.pi * np.array([1050, 5, 1439]) / 1440, rtol=1e-6)


def test_categorical_text_spells_ints_and_marks_absent_values():
    text = encoding.categorical_text(
        Column(tf.constant([3, 7], tf.int64), tf.constant([True, False])), int
    )
    assert text.numpy().tolist() == [b"3", F.MISSING_CATEGORY.encode()]
    joined = encoding.cross_value([tf.constant(["JFK"]), tf.constant(["LAX"])])
    assert joined.numpy().tolist() == [b"JFK" + encoding.CROSS_SEPARATOR.encode() + b"LAX"]


def test_present_mask_reads_the_registry_marker():
    def mask(name, values, dtype=None):
        return encoding.present_mask(F.BY_NAME[name], tf.constant(values, dtype)).numpy()

    assert mask("temp", [1.0, math.nan]).tolist() == [True, False]
    assert mask("plane_type", ["x", ""]).tolist() == [True, False]
    assert mask("day_of_week", [0, 9], tf.int64).all()


def test_a_kind_without_a_rule_is_refused(monkeypatch):
    odd = F.Feature("odd", float, F.Kind.NUMERIC, "x")
    monkeypatch.setattr(F, "FEATURES", (*F.FEATURES, odd))
    object.__setattr__(odd, "kind", "geo")
    columns = _columns()
    columns["odd"] = Column(tf.constant([1.0, 2.0]), tf.constant([True, True]))
    with pytest.raises(ValueError, match="feature 'odd': no encoding rule for kind geo"):
        encoding.encode(columns, _Recorder())
