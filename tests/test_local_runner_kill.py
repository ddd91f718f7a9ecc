"""kill -9 in the middle of a component, then the same command again: the second run completes,
re-executes only what had not finished (ML Metadata holds the first run's finished
executions), and publishes one version, its SavedModel and its TFLite variants together.
The first run leaves nothing where TF Serving or a mobile build could pick it up."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from models.constants import MODEL_NAME
from pipeline.constants import NodeId

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPTIONS = [
    *("--eval-month", "2013-03", "--eval-month", "2013-04", "--train-window", "2"),
    *("--rows-per-month", "500", "--fast", "--min-eval-auc", "0.5"),
    *("--mobile-auc-tolerance", "0.2"),  # 1,000 eval rows: a small model loses more to int8
]
KILLED_IN = NodeId.MOBILE_EXPORT  # after Evaluator and InfraValidator, before Pusher
TIMEOUT_S = 900


def _command(output_dir: pathlib.Path) -> list[str]:
    return [sys.executable, "-u", str(ROOT / "local_runner.py"), "--output-dir", str(output_dir)]


def _published(output_dir: pathlib.Path) -> dict[str, list[str]]:
    """Every entry (versions and anything else, dot-folders included) of the two folders."""
    found = {}
    for place in ("serving_model", "mobile"):
        base = output_dir / place / MODEL_NAME
        found[place] = sorted(p.name for p in base.iterdir()) if base.exists() else []
    return found


def _node_states(output_dir: pathlib.Path, node: str) -> list[int]:
    """ML Metadata states (metadata_store_pb2.Execution.State) of the node's executions, oldest
    first; [] before the run has created its store."""
    from pipeline.summary import open_store

    path = output_dir / "metadata" / f"{MODEL_NAME}.sqlite"
    if not path.exists():
        return []
    store = open_store(str(path))
    context = store.get_context_by_type_and_name("node", f"{MODEL_NAME}.{node}")
    if context is None:
        return []
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    return [e.last_known_state for e in executions]


def _states_now(output_dir: pathlib.Path, node: str) -> list[int]:
    """_node_states while the run writes the store: a store whose tables are not written yet,
    or a locked database, reads as no state yet."""
    from ml_metadata.errors import StatusError

    from pipeline.summary import NotAStore

    try:
        return _node_states(output_dir, node)
    except (NotAStore, StatusError):
        return []


def _kill_while_running(output_dir: pathlib.Path, node: str) -> list[str]:
    """Runs the command until ML Metadata records `node`'s execution as RUNNING (TFX registers
    it so just before calling the executor), lets the executor work for a second, then
    SIGKILL. Returns the lines the run printed; the whole run is killed at TIMEOUT_S."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    run = subprocess.Popen(
        _command(output_dir) + OPTIONS,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    deadline = threading.Timer(TIMEOUT_S, run.kill)
    deadline.start()
    lines = []
    try:
        for line in run.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(f"[pipeline] {node} ..."):
                while run.poll() is None and pb.Execution.RUNNING not in _states_now(
                    output_dir, node
                ):
                    time.sleep(0.2)
                time.sleep(1.0)
                run.send_signal(signal.SIGKILL)
                break
        run.wait(timeout=TIMEOUT_S)
    finally:
        deadline.cancel()
        if run.poll() is None:
            run.kill()
        run.stdout.close()
    assert run.returncode == -signal.SIGKILL, "\n".join(lines[-20:])
    return lines


def test_a_run_killed_in_a_component_is_completed_by_the_same_command(tmp_path):
    from ml_metadata.proto import metadata_store_pb2 as pb

    first = _kill_while_running(tmp_path, KILLED_IN)
    assert f"[pipeline] {NodeId.EVALUATOR} done" in "\n".join(first)
    # Killed inside the executor: ML Metadata still says RUNNING; nothing was published.
    assert _node_states(tmp_path, KILLED_IN) == [pb.Execution.RUNNING]
    assert _published(tmp_path) == {"serving_model": [], "mobile": []}

    second = subprocess.run(
        _command(tmp_path) + OPTIONS,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    summary_file = next(
        line.removeprefix("Summary: ")
        for line in second.stdout.splitlines()
        if line.startswith("Summary: ")
    )
    summary = json.loads(pathlib.Path(summary_file).read_text())
    assert summary["status"] == "succeeded" and summary["pushed"] is True
    states = {c["component"]: c["state"] for c in summary["components"]}
    # The resolver executes on every run (it looks up the champion; nothing to cache).
    redone = {KILLED_IN, NodeId.PUSHER, NodeId.BASELINE_RESOLVER}
    assert {name for name, state in states.items() if state == "ran"} == redone
    assert {state for name, state in states.items() if name not in redone} == {"cached"}
    assert _node_states(tmp_path, KILLED_IN) == [pb.Execution.RUNNING, pb.Execution.COMPLETE]

    version = summary["pushed_version"]
    assert _published(tmp_path) == {"serving_model": [version], "mobile": [version]}
    mobile = tmp_path / "mobile" / MODEL_NAME / version
    assert list(mobile.glob("*.tflite")), sorted(p.name for p in mobile.iterdir())
    assert (tmp_path / "serving_model" / MODEL_NAME / version / "saved_model.pb").is_file()
