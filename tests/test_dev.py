"""scripts/dev.py: the environment build shows one line; its pip output goes to a log."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

pytestmark = pytest.mark.unit

_SPEC = importlib.util.spec_from_file_location(
    "dev", pathlib.Path(__file__).resolve().parents[1] / "scripts" / "dev.py"
)
dev = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(dev)


def test_a_logged_command_writes_its_output_to_the_log_not_the_terminal(tmp_path, capfd):
    log = tmp_path / "install.log"
    dev._run(sys.executable, "-c", "print('Collecting tensorflow==2.16.2')", log=log)
    assert capfd.readouterr().out == ""
    assert "Collecting tensorflow==2.16.2" in log.read_text()


def test_a_failed_logged_command_shows_the_log_s_tail_and_path(tmp_path):
    log = tmp_path / "install.log"
    script = "import sys; print('ERROR: No matching distribution for tfx==9'); sys.exit(3)"
    with pytest.raises(SystemExit) as failure:
        dev._run(sys.executable, "-c", script, log=log)
    message = str(failure.value.code)
    assert "ERROR: No matching distribution for tfx==9" in message
    assert f"failed (exit 3); full log: {log}" in message
