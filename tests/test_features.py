"""The feature registry and the curated schema agree on names, types, presence and ranges."""

from __future__ import annotations

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils

from transforms import features as F
from transforms import schema

_TYPES = {str: schema_pb2.BYTES, int: schema_pb2.INT, float: schema_pb2.FLOAT}


@pytest.fixture(scope="module")
def curated():
    return {f.name: f for f in schema.load().feature}


def test_schema_has_exactly_the_registry_features_and_the_label(curated):
    assert set(curated) == {f.name for f in F.FEATURES} | {F.LABEL_KEY}


@pytest.mark.parametrize("feature", F.FEATURES, ids=lambda f: f.name)
def test_schema_type_presence_and_range_follow_the_registry(curated, feature):
    entry = curated[feature.name]
    assert entry.type == _TYPES[feature.dtype]
    if feature.optional:
        assert entry.presence.min_fraction == 0 and not entry.HasField("shape")
        assert (entry.value_count.min, entry.value_count.max) == (1, 1)
    else:
        assert entry.presence.min_fraction == 1
        assert [d.size for d in entry.shape.dim] == [1]
    if feature.min_value is not None:
        domain = entry.int_domain if feature.dtype is int else entry.float_domain
        assert (domain.min, domain.max) == (feature.min_value, feature.max_value)


def test_label_is_boolean_and_not_expected_when_serving(curated):
    label = curated[F.LABEL_KEY]
    assert label.HasField("bool_domain")
    assert list(label.not_in_environment) == ["SERVING"]


def test_parsing_spec_derived_from_registry_equals_the_schemas():
    assert F.raw_feature_spec() == schema_utils.schema_as_feature_spec(
        schema.load()).feature_spec


def test_slices_and_crosses_name_registry_features():
    assert set(F.SLICE_KEYS) <= set(F.BY_NAME)
    for keys in F.CROSSES:
        assert all(F.BY_NAME[k].kind is F.Kind.CATEGORICAL for k in keys)


def test_closed_domains_list_every_allowed_value():
    domains = {d.name: list(d.value) for d in schema.load().string_domain}
    assert domains["origin"] == ["EWR", "JFK", "LGA"]
    assert len(domains["carrier"]) == 16
