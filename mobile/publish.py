"""What a mobile team receives: `<mobile base>/<serving version>/` with the accepted
variants, labels.txt, contract.json (the input contract) and metrics.json, published
atomically with serving.push.publish."""

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
from transforms import features as F

CONTRACT_FILE = "contract.json"


def contract(
    tf_transform_output: tft.TFTransformOutput,
    version: int,
    data_span: str,
    model_fingerprint: str | None = None,
) -> dict:
    """What a mobile app must feed and what it gets back; vocabularies from the transform.
    `model_fingerprint` (serving.push.fingerprint of the SavedModel the variants come from)
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
        if f.min_value is not None or f.max_value is not None:
            entry["plausible_range"] = [f.min_value, f.max_value]
        if f.kind is F.Kind.CLOCK:
            entry["format"] = "local time as hhmm, e.g. 1730 for 5:30 pm"
        if f.kind is F.Kind.CONTEXT:
            entry["note"] = "accepted for a uniform request; the model does not use it"
        inputs.append(entry)
    return {
        "model": MODEL_NAME,
        "version": version,
        "model_fingerprint": model_fingerprint,
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
    }


def metrics(results: list[VariantResult], baseline: dict) -> dict:
    """metrics.json: the SavedModel's eval figures and every variant's, with its verdict."""
    return {"savedmodel": baseline, "variants": {r.variant: dataclasses.asdict(r) for r in results}}


def published_for(mobile_base: str, version: int, model_fingerprint: str | None) -> str | None:
    """`<mobile_base>/<version>` when it already holds the variants of the model with this
    fingerprint (its contract.json says so), else None."""
    target = os.path.join(mobile_base, str(version))
    path = os.path.join(target, CONTRACT_FILE)
    if model_fingerprint is None or not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return target if json.load(f).get("model_fingerprint") == model_fingerprint else None


def publish(
    results: list[VariantResult],
    work_dir: str,
    mobile_base: str,
    version: int,
    contract_doc: dict,
    baseline: dict,
) -> str | None:
    """Writes the accepted variants (from `work_dir`) and their documents as
    `<mobile_base>/<version>/`; returns that directory, or None when no variant passed."""
    accepted = [r for r in results if r.published]
    if not accepted:
        return None

    def fill(staging: str) -> None:
        for result in accepted:
            tf.io.gfile.copy(
                os.path.join(work_dir, file_name(result.variant)),
                os.path.join(staging, file_name(result.variant)),
            )
        for name, text in (
            ("labels.txt", "\n".join(F.LABEL_CLASSES) + "\n"),
            (CONTRACT_FILE, json.dumps(contract_doc, indent=2)),
            ("metrics.json", json.dumps(metrics(results, baseline), indent=2)),
        ):
            with tf.io.gfile.GFile(os.path.join(staging, name), "w") as f:
                f.write(text)

    return push.publish(mobile_base, fill, version)[1]
