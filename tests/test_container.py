"""The pipeline image's recipe, checked without a Docker engine: what it copies exists, what it
installs matches the development stack, and the paths the compiled spec uses exist in it."""

from __future__ import annotations

import pathlib
import re

import pytest

import kubeflow_runner as kr

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parent.parent
STACK = (
    "tfx",
    "tensorflow",
    "tensorflow-transform",
    "tensorflow-data-validation",
    "tensorflow-model-analysis",
    "tfx-bsl",
    "ml-metadata",
    "tensorflow-serving-api",
)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE))


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_image_builds_on_the_official_tfx_image_of_our_tfx_version():
    (base,) = [arg for op, arg in _instructions() if op == "FROM"]
    tfx_pin = re.search(
        r"^tfx==(\S+)", (ROOT / "requirements" / "tfx.txt").read_text(), re.MULTILINE
    )[1]
    assert base == f"gcr.io/tfx-oss-public/tfx:{tfx_pin}"


def test_image_lock_pins_the_same_tfx_stack_as_development():
    dev = {**_pins("lock.txt"), **_pins("tfx.txt")}
    image = _pins("image-lock.txt")
    assert {name: image[name] for name in STACK} == {name: dev[name] for name in STACK}
    assert "dill" in image  # tensorflow-transform imports it


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [arg.split()[:-1] for op, arg in _instructions() if op == "COPY"]
    sources = [source.rstrip("/") for sources in copies for source in sources]
    assert {
        "requirements/image-lock.txt",
        "setup.py",
        "transforms",
        "models",
        "serving",
        "mobile",
        "pipeline",
        "kubeflow_runner.py",
    } <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.split("/")[0] not in ignored, source
    assert {".venv", "output", ".git"} <= ignored


def test_the_schema_path_in_the_compiled_spec_exists_in_the_image():
    workdir = [arg for op, arg in _instructions() if op == "WORKDIR"][-1]
    assert workdir == kr.IMAGE_SOURCE_DIR
    relative = pathlib.Path(kr.IMAGE_SCHEMA_FILE).relative_to(kr.IMAGE_SOURCE_DIR)
    assert (ROOT / relative).is_file()
    assert any(
        op == "COPY" and arg.split()[0].rstrip("/") == relative.parts[0]
        for op, arg in _instructions()
    )
