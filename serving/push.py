"""Atomic pushes into TF Serving's versioned layout: `<base>/<integer version>/`.

TF Serving polls the base directory and loads any new integer-named directory. The version is
assembled under a dot-prefixed, non-integer name (which TF Serving ignores) and renamed into
place, so on a local or POSIX filesystem a version appears complete or not at all.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import tensorflow as tf

from serving.warmup import WARMUP_DIR, WARMUP_FILE


def versions(base_dir: str) -> list[int]:
    """The integer versions under `base_dir`, oldest first."""
    if not tf.io.gfile.isdir(base_dir):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_dir))
    return sorted(int(name) for name in names if name.isdigit())


def _copy_tree(source: str, target: str) -> None:
    # saved_model.pb last: readers of non-atomic stores treat it as "the model is complete".
    files = []
    for directory, _, names in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        tf.io.gfile.makedirs(os.path.join(target, relative))
        files += [os.path.normpath(os.path.join(relative, name)) for name in names]
    for name in sorted(files, key=lambda n: n == "saved_model.pb"):
        tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name))


def publish(
    base_dir: str, fill: Callable[[str], None], version: int | None = None
) -> tuple[int, str]:
    """Creates `<base_dir>/<version>` atomically: `fill(staging_dir)` writes the content under
    a dot-name, which is then renamed into place. Without a version, the Unix time or one more
    than the newest existing version, if that is later, so versions only grow."""
    tf.io.gfile.makedirs(base_dir)
    if version is None:
        version = max([int(time.time()), *(v + 1 for v in versions(base_dir))])
    target = os.path.join(base_dir, str(version))
    if tf.io.gfile.exists(target):
        raise FileExistsError(f"{target} already exists; versions are never overwritten")
    staging = os.path.join(base_dir, f".publishing-{version}-{uuid.uuid4().hex[:8]}")
    try:
        tf.io.gfile.makedirs(staging)
        fill(staging)
        tf.io.gfile.rename(staging, target)
    except BaseException:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
        raise
    return version, target


def fingerprint(model_dir: str) -> str | None:
    """The identity of a SavedModel: TF's fingerprint (fingerprint.pb, which
    tf.saved_model.save writes since TF 2.12) as `<saved_model_checksum>-<checkpoint_hash>`,
    i.e. the graph and the variables; None for a SavedModel without one. Copies of one
    export share it; two trainings do not."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "fingerprint.pb")):
        return None
    found = tf.saved_model.experimental.read_fingerprint(model_dir)
    return f"{found.saved_model_checksum}-{found.checkpoint_hash}"


def version_holding(model_dir: str, base_dir: str) -> int | None:
    """The newest version under `base_dir` that already holds the SavedModel at `model_dir`
    (same fingerprint), or None."""
    identity = fingerprint(model_dir)
    if identity is None:
        return None
    for version in reversed(versions(base_dir)):
        if fingerprint(os.path.join(base_dir, str(version))) == identity:
            return version
    return None


def push(model_dir: str, base_dir: str, warmup_file: str | None = None) -> tuple[int, str]:
    """Copies a SavedModel (plus TF Serving warmup requests) as a new version; returns the
    version and its directory."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb to push")

    def fill(staging: str) -> None:
        _copy_tree(model_dir, staging)
        if warmup_file:
            tf.io.gfile.makedirs(os.path.join(staging, WARMUP_DIR))
            tf.io.gfile.copy(warmup_file, os.path.join(staging, WARMUP_DIR, WARMUP_FILE))

    return publish(base_dir, fill)
