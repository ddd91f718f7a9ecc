"""What a mobile team receives: `<mobile base>/<serving version>/` with the accepted
variants, labels.txt, contract.json (the input contract) and metrics.json, published with the
serving version by serving.push.publish (both or neither)."""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf
import tensorflow_transform as tft

from mobile.gates import VariantResult
from mobile.runtime import file_name
from models.constants import MODEL_NAME, OUTPUT_KEY, PREDICT_SIGNATURE
from serving import push
from transforms import codec
from transforms import features as F

CONTRACT_FILE = "contract.json"
METRICS_FILE = "metrics.json"
LABELS_FILE = "labels.txt"


def contract(tf_transform_output: tft.TFTransformOutput, data_span: str) -> dict:
    """What a mobile app must feed and what it gets back; vocabularies from the transform.
    `version`, `model_fingerprint` and `model_uri` are None until `folder` publishes it: the
    serving version, and the SavedModel the variants come from (serving.push.identity), which
    makes a re-publication of the same model recognisable."""
    inputs = []
    for f in F.FEATURES:
        marker = F.missing_value(f) if f.optional else None
        entry = {
            "name": f.name,
            "dtype": F.DTYPE_NAMES[f.dtype],
            "shape": [-1],
            "description": f.description,
            "required": not f.optional,
            "missing_value": marker if marker is None or isinstance(marker, str) else "NaN",
        }
        if f.kind is F.Kind.CATEGORICAL:
            vocabulary = [v.decode() for v in tf_transform_output.vocabulary_by_name(f.name)]
            entry["vocabulary"] = [v for v in vocabulary if v != F.MISSING_CATEGORY]
            entry["out_of_vocabulary"] = "accepted; shares one bucket with all unseen values"
        if f.dtype is float:  # the serving side's rule; a TFLite interpreter does not check
            entry["non_finite"] = {
                "nan": "absent (the missing marker)" if f.optional else "invalid",
                "infinity": "invalid",
                "rule": codec.NON_FINITE_RULES[f.optional],
            }
        if f.min_value is not None or f.max_value is not None:
            entry["plausible_range"] = [f.min_value, f.max_value]
        if f.kind is F.Kind.CLOCK:
            entry["format"] = "local time as hhmm, e.g. 1730 for 5:30 pm"
        if f.kind is F.Kind.CONTEXT:
            entry["note"] = "accepted for a uniform request; the model does not use it"
        inputs.append(entry)
    return {
        "model": MODEL_NAME,
        "version": None,
        "model_fingerprint": None,
        "model_uri": None,
        "signature": PREDICT_SIGNATURE,
        "training_data": data_span,
        "inputs": inputs,
        "outputs": [
            {
                "name": OUTPUT_KEY,
                "dtype": "float32",
                "shape": [-1],
                "meaning": "probability that the flight arrives 15+ minutes late or not "
                "at all (label 'delayed' in labels.txt)",
            }
        ],
        "labels": list(F.LABEL_CLASSES),
        "batching": "every input has shape [batch]; resize all inputs together",
        "invalid_values": "the interpreter does not check inputs: a value an input's "
        "non_finite rule calls invalid must not be fed (the answer would be NaN or "
        "meaningless; the served model refuses it with INVALID_ARGUMENT, and mobile/runtime.py "
        "with ValueError naming the feature)",
    }


def metrics(results: list[VariantResult], baseline: dict) -> dict:
    """metrics.json: the SavedModel's eval figures and every variant's, with its verdict."""
    return {"savedmodel": baseline, "variants": {r.variant: dataclasses.asdict(r) for r in results}}


def write(work_dir: str, results: list[VariantResult], baseline: dict, contract_doc: dict) -> None:
    """metrics.json and contract.json next to the converted variants in `work_dir`, for
    `folder` to publish."""
    for name, doc in ((METRICS_FILE, metrics(results, baseline)), (CONTRACT_FILE, contract_doc)):
        with tf.io.gfile.GFile(os.path.join(work_dir, name), "w") as f:
            json.dump(doc, f, indent=2)


def _read(path: str) -> dict:
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def folder(work_dir: str, mobile_base: str) -> push.Folder | None:
    """The variants in `work_dir` (converted and measured there, documented by `write`) that
    passed their gate, as a version of `mobile_base` (serving.push.publish): the variants,
    labels.txt, metrics.json and contract.json with the version and the model's identity.
    contract.json is the marker and comes last, so a folder without it is incomplete (on an
    object store, where files are written in place). None when no variant passed.

    Raises tf.errors.NotFoundError when `work_dir` has no metrics.json or contract.json.
    """
    metrics_file = os.path.join(work_dir, METRICS_FILE)
    accepted = [name for name, v in _read(metrics_file)["variants"].items() if v["published"]]
    template = _read(os.path.join(work_dir, CONTRACT_FILE))
    if not accepted:
        return None

    def content(version: int, model: dict) -> list[tuple[str, push.Source]]:
        doc = {**template, "version": version, **model}
        return [
            *((file_name(n), os.path.join(work_dir, file_name(n))) for n in accepted),
            (LABELS_FILE, ("\n".join(F.LABEL_CLASSES) + "\n").encode()),
            (METRICS_FILE, metrics_file),
            (CONTRACT_FILE, json.dumps(doc, indent=2).encode()),
        ]

    return push.Folder(mobile_base, CONTRACT_FILE, content)
