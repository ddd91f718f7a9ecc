"""The one place feature and label names live.

Everything else (data preparation, schema checks, preprocessing, the model's inputs, serving
signatures, eval config) derives names, types and options from this module, so adding or
renaming a feature is a change here plus a reviewed schema update.
"""

from __future__ import annotations

import dataclasses
import enum
import math

LABEL_KEY = "delayed"
"""1 when the flight arrived 15+ minutes late or never arrived (cancelled/diverted)."""

DELAY_THRESHOLD_MINUTES = 15

LABEL_CLASSES: tuple[str, str] = ("on_time", "delayed")
"""Class names for label 0 and 1, as classification APIs and mobile labels.txt report them."""

MISSING_CATEGORY = "__missing__"
"""What a missing categorical becomes before its vocabulary lookup (e.g. an unknown plane)."""


DTYPE_NAMES: dict[type, str] = {str: "string", int: "int64", float: "float32"}
"""Registry dtype -> the TensorFlow/NumPy dtype name that carries it everywhere: tf.Example
lists (bytes/int64/float), serving tensors, the TFLite contract."""


class Kind(enum.Enum):
    """How Transform encodes a raw feature."""

    CATEGORICAL = "categorical"  # vocabulary (+ OOV bucket) -> embedding
    NUMERIC = "numeric"  # z-score; missing -> mean and a missing indicator
    CLOCK = "clock"  # local time as hhmm -> sin/cos of minute of day + hour bucket
    CONTEXT = "context"  # kept in the examples for slicing and validation; not a model input


@dataclasses.dataclass(frozen=True)
class Feature:
    """One raw feature as it appears in the examples and in serving requests."""

    name: str
    dtype: type  # str, int or float: the tf.Example list kind
    kind: Kind
    description: str
    optional: bool = False  # may be absent (NaN / "" in dense serving requests)
    top_k: int | None = None  # CATEGORICAL: keep the k most frequent values
    log: bool = False  # NUMERIC: log1p before z-scoring (long-tailed, non-negative)
    min_value: float | None = None  # schema value range, checked by ExampleValidator
    max_value: float | None = None
    # CATEGORICAL text: the closed list of allowed values (a new value stops the run at
    # ExampleValidator); empty = open, new values share the OOV bucket.
    domain: tuple[str, ...] = ()
    # CATEGORICAL text, open: at most this many distinct values in one month's examples (the
    # schema's unique_constraints.max). A flood of new values stops the run; a few new values
    # share the OOV bucket, and a few carrying much of a month are drift (L-infinity).
    max_values: int | None = None

    def __post_init__(self):
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"feature {self.name!r}: dtype must be one of str, int, float")
        if self.optional and self.dtype is int:
            raise ValueError(
                f"feature {self.name!r}: an int feature cannot be optional, "
                "dense requests have no missing marker for integers"
            )
        if self.domain and (self.kind is not Kind.CATEGORICAL or self.dtype is not str):
            raise ValueError(f"feature {self.name!r}: only text categoricals take a domain")
        if self.max_values is not None and (
            self.kind is not Kind.CATEGORICAL or self.dtype is not str or self.domain
        ):
            raise ValueError(
                f"feature {self.name!r}: only open text categoricals (no domain) take max_values"
            )


FEATURES: tuple[Feature, ...] = (
    # The flight as scheduled.
    Feature(
        "carrier",
        str,
        Kind.CATEGORICAL,
        "Two-letter airline code, e.g. UA.",
        domain=(
            "9E",
            "AA",
            "AS",
            "B6",
            "DL",
            "EV",
            "F9",
            "FL",
            "HA",
            "MQ",
            "OO",
            "UA",
            "US",
            "VX",
            "WN",
            "YV",
        ),
    ),
    Feature(
        "origin",
        str,
        Kind.CATEGORICAL,
        "New York airport: EWR, JFK or LGA.",
        domain=("EWR", "JFK", "LGA"),
    ),
    # max_values: 2013's months hold 90-96 destinations (105 over the year).
    Feature(
        "dest",
        str,
        Kind.CATEGORICAL,
        "Destination airport FAA code, e.g. IAH.",
        max_values=150,
    ),
    Feature(
        "distance",
        float,
        Kind.NUMERIC,
        "Miles between airports.",
        log=True,
        min_value=1,
        max_value=6000,
    ),
    Feature(
        "sched_dep_time",
        int,
        Kind.CLOCK,
        "Scheduled local departure time as hhmm.",
        min_value=0,
        max_value=2359,
    ),
    Feature(
        "sched_arr_time",
        int,
        Kind.CLOCK,
        "Scheduled local arrival time as hhmm.",
        min_value=0,
        max_value=2359,
    ),
    # Not a model input: evaluation months (Nov-Dec) lie outside the training months, and
    # feeding month made the model extrapolate (AUC 0.702 -> 0.693 in a GBT check).
    Feature("month", int, Kind.CONTEXT, "Month of departure, 1-12.", min_value=1, max_value=12),
    Feature(
        "day_of_week",
        int,
        Kind.CATEGORICAL,
        "ISO day of week: 1 = Monday, 7 = Sunday.",
        min_value=1,
        max_value=7,
    ),
    # The plane (absent when its tail number is not in the planes table).
    Feature(
        "plane_age",
        float,
        Kind.NUMERIC,
        "Years since the plane was built.",
        optional=True,
        min_value=0,
        max_value=100,
    ),
    Feature(
        "plane_seats",
        float,
        Kind.NUMERIC,
        "Number of seats.",
        optional=True,
        log=True,
        min_value=1,
        max_value=1000,
    ),
    Feature(
        "plane_engines",
        float,
        Kind.NUMERIC,
        "Number of engines.",
        optional=True,
        min_value=1,
        max_value=8,
    ),
    Feature(
        "plane_type",
        str,
        Kind.CATEGORICAL,
        "e.g. Fixed wing multi engine.",
        optional=True,
        domain=("Fixed wing multi engine", "Fixed wing single engine", "Rotorcraft"),
    ),
    # max_values: 2013's months hold 27-32 manufacturers.
    Feature(
        "plane_manufacturer",
        str,
        Kind.CATEGORICAL,
        "e.g. EMBRAER.",
        optional=True,
        top_k=30,
        max_values=50,
    ),
    # Hourly weather at the origin at the scheduled departure hour.
    Feature(
        "temp", float, Kind.NUMERIC, "Temperature, F.", optional=True, min_value=-40, max_value=130
    ),
    Feature(
        "dewp", float, Kind.NUMERIC, "Dew point, F.", optional=True, min_value=-60, max_value=100
    ),
    Feature(
        "humid",
        float,
        Kind.NUMERIC,
        "Relative humidity, %.",
        optional=True,
        min_value=0,
        max_value=100,
    ),
    Feature(
        "wind_dir",
        float,
        Kind.NUMERIC,
        "Wind direction, degrees.",
        optional=True,
        min_value=0,
        max_value=360,
    ),
    Feature(
        "wind_speed",
        float,
        Kind.NUMERIC,
        "Wind speed, mph.",
        optional=True,
        min_value=0,
        max_value=150,
    ),
    Feature(
        "wind_gust",
        float,
        Kind.NUMERIC,
        "Gust speed, mph (mostly absent).",
        optional=True,
        min_value=0,
        max_value=200,
    ),
    Feature(
        "precip",
        float,
        Kind.NUMERIC,
        "Precipitation, inches.",
        optional=True,
        log=True,
        min_value=0,
        max_value=10,
    ),
    Feature(
        "pressure",
        float,
        Kind.NUMERIC,
        "Sea level pressure, millibars.",
        optional=True,
        min_value=900,
        max_value=1100,
    ),
    Feature(
        "visib", float, Kind.NUMERIC, "Visibility, miles.", optional=True, min_value=0, max_value=10
    ),
    # Origin weather over the hours up to the scheduled departure (observed before it).
    Feature(
        "precip_4h",
        float,
        Kind.NUMERIC,
        "Precipitation in the departure hour and the 3 before, inches.",
        optional=True,
        log=True,
        min_value=0,
        max_value=20,
    ),
    Feature(
        "precip_12h",
        float,
        Kind.NUMERIC,
        "Precipitation in the departure hour and the 11 before, inches.",
        optional=True,
        log=True,
        min_value=0,
        max_value=40,
    ),
    Feature(
        "visib_min_4h",
        float,
        Kind.NUMERIC,
        "Lowest visibility in the departure hour and the 3 before, miles.",
        optional=True,
        min_value=0,
        max_value=10,
    ),
    Feature(
        "wind_speed_max_4h",
        float,
        Kind.NUMERIC,
        "Highest wind speed in the departure hour and the 3 before, mph.",
        optional=True,
        min_value=0,
        max_value=150,
    ),
    # Congestion, from the published schedule.
    Feature(
        "origin_hour_flights",
        float,
        Kind.NUMERIC,
        "Flights scheduled to leave the origin in the same hour.",
        log=True,
        min_value=1,
        max_value=500,
    ),
    Feature(
        "origin_day_flights",
        float,
        Kind.NUMERIC,
        "Flights scheduled to leave the origin that day.",
        log=True,
        min_value=1,
        max_value=5000,
    ),
    Feature(
        "dest_day_flights",
        float,
        Kind.NUMERIC,
        "Flights scheduled from New York to the same destination that day.",
        log=True,
        min_value=1,
        max_value=1000,
    ),
)

DRIFT_THRESHOLDS: dict[str, float] = {
    # Categoricals: L-infinity distance between the value frequencies of two months.
    "carrier": 0.12,
    "origin": 0.13,
    "dest": 0.08,
    "plane_type": 0.03,
    "plane_manufacturer": 0.14,
    # Numerics: Jensen-Shannon divergence of the histograms of two months (TFDV's L-infinity
    # on numeric features always reports 0).
    "distance": 0.15,
    "sched_dep_time": 0.1,
    "sched_arr_time": 0.1,
    "plane_age": 0.15,
    "plane_seats": 0.35,
    "temp": 0.6,
    "dewp": 0.45,
    "humid": 0.25,
    "pressure": 0.35,
    "visib": 0.35,
    "visib_min_4h": 0.2,
    "wind_dir": 0.25,
    "wind_speed": 0.15,
    "wind_speed_max_4h": 0.2,
    "wind_gust": 0.55,
    "precip_4h": 0.95,
    "precip_12h": 0.95,
    "origin_hour_flights": 0.15,
    "origin_day_flights": 0.5,
    "dest_day_flights": 0.15,
}
"""Drift comparators between consecutive months, per feature (the schema carries them).

Chosen from the measured distances between consecutive 2013 months, at full size and in
samples of 200 rows a month (TFDV's distances grow as samples shrink): at least 1.5x the
largest real full-size distance and 1.2x the largest over five 200-row samples, so no real
2013 month is flagged, while temp in Celsius (JSD 0.997), dewp in Celsius (0.754) and renamed
carrier codes (L-infinity 0.178) are. Left out: day_of_week and month (calendar-driven),
plane_engines and precip (near-constant: one rare value moves the histogram distance to 1).
The figures are in the README's continuous-training section."""


MIN_PRESENCE: dict[str, float] = {
    **dict.fromkeys(
        ("plane_age", "plane_seats", "plane_engines", "plane_type", "plane_manufacturer"), 0.4
    ),
    **dict.fromkeys(("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "visib"), 0.8),
    **dict.fromkeys(("precip_4h", "precip_12h", "visib_min_4h", "wind_speed_max_4h"), 0.8),
    "pressure": 0.35,
}
"""The least fraction of a month's examples (and of served rows) in which an optional feature
must be present (the schema's presence.min_fraction; below it ExampleValidator reports
FEATURE_TYPE_LOW_FRACTION_PRESENT). 2013's monthly presence: hourly weather 0.967 (Dec) to
1.0, wind_dir 0.949 to 0.986, so 0.8: a weather.csv that misses a fifth of its month (or is
of another month) stops the run. Plane features 0.81-0.85 (tailnums missing from planes.csv)
and pressure 0.799-0.942 vary more: half of the lowest month, rounded down to 0.05, which a
planes.csv of other registrations falls below. Left out: wind_gust, reported only when it
gusts (0.13-0.42 of a month)."""


SKEW_THRESHOLDS: dict[str, float] = {
    # Categoricals: L-infinity distance between the value frequencies of served and training
    # rows.
    "carrier": 0.1,
    "origin": 0.1,
    "dest": 0.05,
    "plane_type": 0.05,
    "plane_manufacturer": 0.15,
    # Numerics: Jensen-Shannon divergence of the histograms (TFDV's L-infinity on numeric
    # features always reports 0).
    "distance": 0.1,
    "sched_dep_time": 0.1,
    "sched_arr_time": 0.05,
    "plane_age": 0.1,
    "plane_seats": 0.2,
    "temp": 0.5,
    "dewp": 0.3,
    "humid": 0.05,
    "pressure": 0.15,
    "visib": 0.05,
    "visib_min_4h": 0.05,
    "wind_dir": 0.1,
    "wind_speed": 0.1,
    "wind_speed_max_4h": 0.1,
    "wind_gust": 0.15,
    "precip_4h": 0.35,
    "precip_12h": 0.3,
    "origin_hour_flights": 0.1,
    "origin_day_flights": 0.2,
    "dest_day_flights": 0.1,
}
"""Skew comparators between served rows and the training statistics of the model that served
them, per feature (the schema carries them; serving/monitor.py compares).

Measured with real 2013 rows: served = Nov-Dec, training = Jan-Sep (the default window's
training months, pooled from per-month statistics) and Jan-Feb at 250 rows a month (the e2e
test's run). Each threshold is at least 1.5x the largest healthy distance, over the full
Nov-Dec and five samples each of 1,000 and 2,000 rows (distances grow as samples shrink;
serving/monitor.py MIN_ROWS = 1,000), so real Nov-Dec traffic passes, while in 1,000-row
samples temp in Celsius (JSD 0.92 and more, healthy at most 0.28), distance in kilometres
(0.135, healthy at most 0.065) and a new carrier code on 20% of requests (L-infinity 0.20,
healthy at most 0.05) are flagged. A feature that is never sent has no histogram: the monitor's
missing-fraction check catches it (wind_gust always missing: +0.24, healthy at most 0.05).
Left out: day_of_week and month (calendar-driven: serving months are never training months),
plane_engines and precip (near-constant: one rare value moves the histogram distance to 0.6).
The figures are in serving/README.md's monitoring section."""


CROSSES: tuple[tuple[str, ...], ...] = (("origin", "dest"),)
"""Categorical crosses: each gets its own vocabulary (the route for origin x dest)."""

SLICE_KEYS: tuple[str, ...] = ("carrier", "origin", "month")
"""Raw features the Evaluator slices metrics by."""

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


# --- Derived names: every Transform output and vocabulary is named here -----------------------


def transformed_name(key: str) -> str:
    """Name of a Transform output derived from raw feature `key`."""
    return f"{key}_xf"


def missing_indicator_name(name: str) -> str:
    """Transform output of an optional NUMERIC feature: 1.0 where the value is absent."""
    return transformed_name(f"{name}_missing")


def clock_names(name: str) -> tuple[str, str]:
    """Transform outputs of a CLOCK feature: sine and cosine of its minute of the day."""
    return transformed_name(f"{name}_sin"), transformed_name(f"{name}_cos")


def clock_hour_key(name: str) -> str:
    """The hour of a CLOCK feature, a categorical of its own (vocabulary and output key)."""
    return f"{name}_hour"


def cross_name(keys: tuple[str, ...]) -> str:
    """Key of a categorical cross (vocabulary and, through transformed_name, its output)."""
    return "_x_".join(keys)


def vocabulary_names() -> tuple[str, ...]:
    """Every vocabulary Transform computes, by file name: each CATEGORICAL feature, each
    CLOCK feature's hour and each cross (TFTransformOutput.vocabulary_by_name reads them)."""
    return (
        tuple(f.name for f in of_kind(Kind.CATEGORICAL))
        + tuple(clock_hour_key(f.name) for f in of_kind(Kind.CLOCK))
        + tuple(cross_name(keys) for keys in CROSSES)
    )


def of_kind(kind: Kind) -> tuple[Feature, ...]:
    return tuple(f for f in FEATURES if f.kind is kind)


# --- Dtypes and the missing-value marker ------------------------------------------------------


def tf_dtype(dtype: type):
    """The tf.DType that carries a registry dtype (str, int or float): tf.string, tf.int64,
    tf.float32."""
    import tensorflow as tf  # deferred: this module is imported by light code paths

    return tf.as_dtype(DTYPE_NAMES[dtype])


def numpy_dtype(dtype: type):
    """The NumPy dtype of a column of a registry dtype: object (bytes or str), int64, float32."""
    import numpy as np

    return np.dtype(object if dtype is str else DTYPE_NAMES[dtype])


MISSING_MARKERS: dict[type, object] = {str: "", float: math.nan}
"""What an absent optional value is in a dense [batch] request (TF Serving predict rows and
columns, the TFLite inputs): "" for text, NaN for numbers. In tf.Examples (classify requests,
training data) an absent value is an absent feature. int features are never optional."""


def missing_value(feature: Feature) -> object:
    """The dense missing marker of an optional feature (see MISSING_MARKERS)."""
    return MISSING_MARKERS[feature.dtype]


def is_missing(feature: Feature, value: object) -> bool:
    """Whether a raw Python value means "absent" for `feature`: None, "" (the text marker, or
    an empty CSV cell for a number) or NaN."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    return isinstance(value, float) and math.isnan(value)


def raw_feature_spec() -> dict:
    """tf.io parsing spec of the raw features and the label, as the schema declares them.

    Required features are FixedLenFeature([1]); optional ones are VarLenFeature, so that
    absence stays visible to Transform instead of being silently filled at parse time.
    """
    import tensorflow as tf  # deferred: this module is imported by light code paths

    spec = {
        f.name: (
            tf.io.VarLenFeature(tf_dtype(f.dtype))
            if f.optional
            else tf.io.FixedLenFeature([1], tf_dtype(f.dtype))
        )
        for f in FEATURES
    }
    spec[LABEL_KEY] = tf.io.FixedLenFeature([1], tf.int64)
    return spec
