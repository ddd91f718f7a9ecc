"""The fresh validation process: a failure of the process is an infrastructure failure
(InfraFailure, the step fails and runs again), never a verdict on the model."""

from __future__ import annotations

import json
import stat

import pytest

from serving import warmup

pytestmark = pytest.mark.unit

TF_NOISE = (
    "2026-11-30 08:20:08.537797: I tensorflow/core/util/port.cc:113] oneDNN custom operations "
    "are on.\\nW0000 00:00:1796026901.461196   17397 tf_tfl_flatbuffer_helpers.cc:390] Ignored."
)


def _fake_python(monkeypatch, tmp_path, body: str) -> None:
    """Makes the 'fresh process' a shell script with `body`."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\nprintf '{TF_NOISE}\\n' >&2\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(warmup.sys, "executable", str(script))


def test_a_crash_of_the_process_is_an_infrastructure_failure_naming_the_signal(
    monkeypatch, tmp_path
):
    _fake_python(
        monkeypatch, tmp_path, "echo 'Fatal Python error: Segmentation fault' >&2\nkill -SEGV $$"
    )
    with pytest.raises(warmup.InfraFailure) as caught:
        warmup.load_and_query_in_fresh_process("/m", "/w")
    message = str(caught.value)
    assert "killed by SIGSEGV" in message and "Fatal Python error: Segmentation fault" in message
    assert "oneDNN" not in message and "W0000" not in message  # start-up noise left out


def test_a_report_of_ok_with_a_failing_exit_code_is_not_accepted(monkeypatch, tmp_path):
    report = json.dumps({"ok": True, "problems": [], "requests": 8})
    _fake_python(monkeypatch, tmp_path, f"echo '{report}'\nexit 3")
    with pytest.raises(warmup.InfraFailure, match="reported ok=True but exited with 3"):
        warmup.load_and_query_in_fresh_process("/m", "/w")


def test_a_time_out_is_an_infrastructure_failure(monkeypatch, tmp_path):
    _fake_python(monkeypatch, tmp_path, "sleep 30")
    with pytest.raises(warmup.InfraFailure, match="took over 1 s"):
        warmup.load_and_query_in_fresh_process("/m", "/w", timeout_seconds=1)


def test_no_report_at_all_is_an_infrastructure_failure(monkeypatch, tmp_path):
    _fake_python(monkeypatch, tmp_path, "echo 'ImportError: no module named x' >&2\nexit 1")
    with pytest.raises(warmup.InfraFailure, match="exited with 1 without a report: ImportError"):
        warmup.load_and_query_in_fresh_process("/m", "/w")


def test_a_problem_of_the_model_is_a_report_not_a_failure(monkeypatch, tmp_path):
    report = json.dumps({"ok": False, "problems": ["loading failed: no variables"], "requests": 8})
    _fake_python(monkeypatch, tmp_path, f"echo '{report}'\nexit 1")
    result = warmup.load_and_query_in_fresh_process("/m", "/w")
    assert result.ok is False and result.problems == ["loading failed: no variables"]
    assert result.load_seconds is None
    json.dumps(result.__dict__, allow_nan=False)  # strict JSON
