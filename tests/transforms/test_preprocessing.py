"""preprocessing_fn through real tf.Transform on Beam, with asserted outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline import data
from transforms import features as F

pytestmark = pytest.mark.component


def _transform(tf_transform_output, rows):
    spec = F.raw_feature_spec()
    raw = tf.io.parse_example(data.encode_examples(rows), spec)
    return {k: v.numpy() for k, v in tf_transform_output.transform_raw_features(raw).items()}


@pytest.fixture(scope="module")
def transformed(tf_transform_output, flight_rows):
    return _transform(tf_transform_output, flight_rows)


def test_outputs_are_named_and_typed_as_the_model_expects(tf_transform_output):
    spec = tf_transform_output.transformed_feature_spec()
    numeric = [f.name for f in F.of_kind(F.Kind.NUMERIC)]
    expected = (
        {F.transformed_name(f.name) for f in F.of_kind(F.Kind.CATEGORICAL)}
        | {F.transformed_name(n) for n in numeric}
        | {
            F.transformed_name(f"{f.name}_missing")
            for f in F.FEATURES
            if f.optional and f.kind is F.Kind.NUMERIC
        }
        | {
            F.transformed_name(f"{f.name}_{part}")
            for f in F.of_kind(F.Kind.CLOCK)
            for part in ("sin", "cos", "hour")
        }
        | {F.transformed_name(F.cross_name(keys)) for keys in F.CROSSES}
        | {F.LABEL_KEY}
    )
    assert set(spec) == expected
    assert F.transformed_name("month") not in spec  # context only
    for name, feature_spec in spec.items():
        assert feature_spec.shape == []
        is_id = (
            name.endswith("_hour_xf")
            or name == F.LABEL_KEY
            or any(
                name == F.transformed_name(k)
                for k in [f.name for f in F.of_kind(F.Kind.CATEGORICAL)]
                + [F.cross_name(c) for c in F.CROSSES]
            )
        )
        assert feature_spec.dtype == (tf.int64 if is_id else tf.float32), name


def test_numeric_features_are_z_scored_over_present_values(transformed, flight_rows):
    for name in ("distance", "temp", "plane_seats"):
        present = flight_rows[name].notna().to_numpy()
        z = transformed[F.transformed_name(name)]
        assert abs(z[present].mean()) < 1e-3, name
        assert z[present].std() == pytest.approx(1.0, abs=1e-2), name
        assert np.all(z[~present] == 0.0), name


def test_missing_values_get_the_mean_and_an_indicator(transformed, flight_rows):
    missing = flight_rows["plane_age"].isna().to_numpy()
    assert 0 < missing.sum() < len(missing)  # the sample has both
    indicator = transformed[F.transformed_name("plane_age_missing")]
    np.testing.assert_array_equal(indicator, missing.astype(np.float32))
    assert np.all(transformed[F.transformed_name("plane_age")][missing] == 0.0)


def test_log_scaling_precedes_z_scoring(transformed, flight_rows):
    logged = np.log1p(flight_rows["distance"].to_numpy())
    expected = (logged - logged.mean()) / logged.std()
    np.testing.assert_allclose(transformed[F.transformed_name("distance")], expected, atol=1e-3)


def test_categoricals_map_to_vocabulary_ids_with_an_oov_bucket(tf_transform_output, flight_rows):
    vocabulary = tf_transform_output.vocabulary_by_name("carrier")
    buckets = tf_transform_output.num_buckets_for_transformed_feature(F.transformed_name("carrier"))
    assert buckets == len(vocabulary) + 1
    rows = flight_rows.head(3).copy()
    rows.loc[rows.index[2], "carrier"] = "ZZ"  # never seen
    ids = _transform(tf_transform_output, rows)[F.transformed_name("carrier")]
    names = [v.decode() for v in vocabulary]
    assert ids[0] == names.index(rows["carrier"].iloc[0])
    assert ids[2] == len(vocabulary)


def test_missing_category_is_its_own_value(tf_transform_output, flight_rows):
    vocabulary = [v.decode() for v in tf_transform_output.vocabulary_by_name("plane_type")]
    assert F.MISSING_CATEGORY in vocabulary


def test_clock_features_encode_minute_of_day_and_hour(tf_transform_output, flight_rows):
    rows = flight_rows.head(2).copy()
    rows["sched_dep_time"] = [600, 1830]
    out = _transform(tf_transform_output, rows)
    np.testing.assert_allclose(
        out["sched_dep_time_sin_xf"],
        [math.sin(math.pi / 2), math.sin(2 * math.pi * 1110 / 1440)],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        out["sched_dep_time_cos_xf"], [0.0, math.cos(2 * math.pi * 1110 / 1440)], atol=1e-6
    )
    hours = [v.decode() for v in tf_transform_output.vocabulary_by_name("sched_dep_time_hour")]
    assert out["sched_dep_time_hour_xf"].tolist() == [hours.index("6"), hours.index("18")]


def test_route_cross_joins_origin_and_destination(tf_transform_output, flight_rows):
    routes = [v.decode() for v in tf_transform_output.vocabulary_by_name("origin_x_dest")]
    row = flight_rows.iloc[0]
    out = _transform(tf_transform_output, flight_rows.head(1))
    assert out["origin_x_dest_xf"][0] == routes.index(f"{row['origin']}|{row['dest']}")


def test_label_passes_through(transformed, flight_rows):
    np.testing.assert_array_equal(transformed[F.LABEL_KEY], flight_rows[F.LABEL_KEY])
