"""The curated schema file is what the registry states, and parses as the registry's spec."""

from __future__ import annotations

import pytest
from tensorflow_transform.tf_metadata import schema_utils

from transforms import features as F
from transforms import schema

pytestmark = pytest.mark.unit


def test_the_schema_file_is_generated_from_the_registry():
    """The file ImportSchemaGen reads and the registry must both exist; they must agree.
    After a registry change: `python -m transforms.schema`, then review the diff."""
    assert schema.load() == schema.build()


def test_parsing_spec_derived_from_registry_equals_the_schemas():
    assert F.raw_feature_spec() == schema_utils.schema_as_feature_spec(schema.load()).feature_spec


def test_required_optional_ranges_and_closed_domains_become_tfdv_terms():
    built = schema.build()
    by_name = {f.name: f for f in built.feature}
    assert by_name["distance"].presence.min_fraction == 1.0
    assert [d.size for d in by_name["distance"].shape.dim] == [1]
    assert (by_name["distance"].float_domain.min, by_name["distance"].float_domain.max) == (1, 6000)
    assert by_name["wind_gust"].presence.min_count == 0
    assert not by_name["wind_gust"].HasField("shape")
    assert (by_name["wind_gust"].value_count.min, by_name["wind_gust"].value_count.max) == (1, 1)
    assert (by_name["day_of_week"].int_domain.min, by_name["day_of_week"].int_domain.max) == (1, 7)
    domains = {d.name: list(d.value) for d in built.string_domain}
    assert domains == {f.name: list(f.domain) for f in F.FEATURES if f.domain}
    assert domains["origin"] == ["EWR", "JFK", "LGA"]
    assert by_name["origin"].domain == "origin" and not by_name["dest"].domain


def test_label_is_boolean_and_not_expected_when_serving():
    label = {f.name: f for f in schema.build().feature}[F.LABEL_KEY]
    assert label.HasField("bool_domain")
    assert list(label.not_in_environment) == [schema.SERVING]


def test_write_produces_a_file_load_reads_back(tmp_path, monkeypatch):
    path = tmp_path / "schema.pbtxt"
    schema.write(path)
    monkeypatch.setattr(schema, "SCHEMA_FILE", path)
    assert schema.load() == schema.build()
    assert path.read_text().startswith("# Generated from transforms/features.py")


def test_no_float_feature_lets_nan_or_infinity_through():
    built = {f.name: f for f in schema.build().feature}
    floats = [f.name for f in F.FEATURES if f.dtype is float]
    assert floats
    for name in floats:
        domain = built[name].float_domain
        assert domain.disallow_nan and domain.disallow_inf, name


def test_open_text_categoricals_cap_their_distinct_values():
    """A flood of new categories: TFDV flags a month with more distinct values than the
    registry's max_values (FEATURE_TYPE_HIGH_UNIQUE)."""
    built = {f.name: f for f in schema.build().feature}
    capped = {f.name: f.max_values for f in F.FEATURES if f.max_values is not None}
    assert capped == {"dest": 150, "plane_manufacturer": 50}
    for name, cap in capped.items():
        assert built[name].unique_constraints.max == cap
    assert not built["carrier"].HasField("unique_constraints")  # closed: its domain rules
