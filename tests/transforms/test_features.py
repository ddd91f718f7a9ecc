"""The feature registry: its rules, derived names, dtypes and missing markers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from transforms import features as F

pytestmark = pytest.mark.unit


def test_names_are_unique_and_slices_and_crosses_name_registry_features():
    assert len(F.BY_NAME) == len(F.FEATURES)
    assert set(F.SLICE_KEYS) <= set(F.BY_NAME)
    for keys in F.CROSSES:
        assert all(F.BY_NAME[k].kind is F.Kind.CATEGORICAL for k in keys)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dtype=int, optional=True), "cannot be optional"),
        (dict(dtype=bytes), "dtype must be one of"),
        (dict(dtype=float, kind=F.Kind.NUMERIC, domain=("a",)), "only text categoricals"),
        (dict(dtype=int, max_values=10), "only open text categoricals"),
        (dict(domain=("a", "b"), max_values=10), "only open text categoricals"),
    ],
)
def test_registry_rejects_features_it_cannot_carry(kwargs, message):
    spec = dict(name="x", dtype=str, kind=F.Kind.CATEGORICAL, description="x") | kwargs
    with pytest.raises(ValueError, match=message):
        F.Feature(**spec)


def test_derived_names_and_vocabularies():
    assert F.transformed_name("distance") == "distance_xf"
    assert F.missing_indicator_name("temp") == "temp_missing_xf"
    assert F.clock_names("sched_dep_time") == ("sched_dep_time_sin_xf", "sched_dep_time_cos_xf")
    assert F.clock_hour_key("sched_dep_time") == "sched_dep_time_hour"
    assert F.cross_name(("origin", "dest")) == "origin_x_dest"
    vocabularies = F.vocabulary_names()
    assert {"carrier", "day_of_week", "sched_arr_time_hour", "origin_x_dest"} <= set(vocabularies)
    assert len(set(vocabularies)) == len(vocabularies)


def test_dtypes_follow_one_mapping():
    assert {t: F.numpy_dtype(t) for t in (str, int, float)} == {
        str: np.dtype(object),
        int: np.dtype(np.int64),
        float: np.dtype(np.float32),
    }
    import tensorflow as tf

    assert [F.tf_dtype(t) for t in (str, int, float)] == [tf.string, tf.int64, tf.float32]


@pytest.mark.parametrize(
    "name, value, missing",
    [
        ("plane_type", "", True),
        ("plane_type", "Rotorcraft", False),
        ("plane_type", None, True),
        ("temp", math.nan, True),
        ("temp", "", True),
        ("temp", 0.0, False),
        ("temp", None, True),
        ("day_of_week", 3, False),
    ],
)
def test_missing_marker(name, value, missing):
    assert F.is_missing(F.BY_NAME[name], value) is missing


def test_missing_value_is_the_dense_marker():
    assert F.missing_value(F.BY_NAME["plane_type"]) == ""
    assert math.isnan(F.missing_value(F.BY_NAME["temp"]))


@pytest.mark.parametrize(
    "module",
    [
        "pipeline.config",
        "transforms.features",
        "transforms.codec",
        "models.constants",
        "models.config",
        "mobile.config",
        "pipeline.constants",
    ],
)
def test_leaf_modules_load_no_tensorflow(module):
    code = (
        f"import sys, {module}; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tfx', 'tensorflow_transform', 'pandas', 'keras_tuner', 'tf_keras')]"
        "; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
