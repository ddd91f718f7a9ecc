"""pipeline/console.py: the terminal shows the run's own lines, the log file everything else."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

from pipeline import console

pytestmark = pytest.mark.unit

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(script: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(_ROOT), "LOG": str(tmp_path / "run.log")},
    )


def test_descriptor_level_output_goes_to_the_log_and_own_lines_to_the_terminal(tmp_path):
    done = _run(
        """
        import logging, os, pathlib, sys, warnings
        from pipeline import console
        with console.capture(pathlib.Path(os.environ["LOG"])):
            os.write(2, b"E0000 Unable to register cuDNN factory\\n")  # as C++ code writes
            os.write(1, b"W0000 TFLite converter line\\n")
            print("Search space summary")  # a library's print
            warnings.warn("crcmod is not installed")
            logging.getLogger("absl").warning("an absl warning")
            console.say("[pipeline] Trainer done in 1.0 s")
            console.say("error: what went wrong", error=True)
        print("after the capture")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[pipeline] Trainer done in 1.0 s", "after the capture"]
    assert done.stderr.splitlines() == ["error: what went wrong"]
    log = (tmp_path / "run.log").read_text()
    for line in ("cuDNN factory", "TFLite converter", "Search space summary", "crcmod", "absl"):
        assert line in log
    assert "[pipeline]" not in log


def test_a_traceback_raised_out_of_the_capture_reaches_the_terminal_in_full(tmp_path):
    done = _run(
        """
        import os, pathlib
        from pipeline import console
        with console.capture(pathlib.Path(os.environ["LOG"])):
            raise RuntimeError("Trainer failed: no examples in split 'train'")
        """,
        tmp_path,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "RuntimeError: Trainer failed: no examples in split 'train'" in done.stderr


def test_the_log_moves_into_the_run_folder_and_keeps_being_written(tmp_path):
    done = _run(
        """
        import os, pathlib
        from pipeline import console
        with console.capture(pathlib.Path(os.environ["LOG"])):
            os.write(1, b"before\\n")
            moved = console.move_log(pathlib.Path(os.environ["LOG"]).parent / "r1" / "run.log")
            os.write(1, b"after\\n")
            console.say(str(moved))
        """,
        tmp_path,
    )
    moved = tmp_path / "r1" / "run.log"
    assert done.stdout.strip() == str(moved)
    assert moved.read_text().splitlines() == ["before", "after"]
    assert not (tmp_path / "run.log").exists()


@pytest.mark.parametrize(
    "line, detail",
    [
        ("Epoch 3/10", "epoch 3/10"),
        ("Search: Running Trial #2", "trial 2"),
        ("1/1 - 0s - loss: 0.6", None),
        ("I1130 Component Trainer is running.", None),
    ],
)
def test_live_details_come_from_epoch_and_trial_lines(line, detail):
    assert console.live_detail(line) == detail


def test_without_a_capture_the_run_s_lines_go_to_stdout(capsys):
    console.say("[landing] every month present")
    assert console.log_path() is None and console.move_log(pathlib.Path("x")) is None
    assert capsys.readouterr().out == "[landing] every month present\n"


def test_on_a_terminal_a_long_step_shows_a_live_status_with_its_progress(tmp_path):
    import os
    import pty

    master, terminal = pty.openpty()
    script = """
        import os, pathlib, time
        from pipeline import console
        with console.capture(pathlib.Path(os.environ["LOG"])):
            console.start_step("Trainer")
            os.write(1, b"Epoch 3/10\\n")
            time.sleep(2.5)
            console.end_step()
            console.say("[pipeline] Trainer done in 2.5 s")
        """
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=_ROOT,
        stdout=terminal,
        stderr=terminal,
        env={"PYTHONPATH": str(_ROOT), "LOG": str(tmp_path / "run.log")},
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait() == 0
    text = shown.decode()
    assert "[pipeline] Trainer ... 2 s · epoch 3/10" in text
    assert text.rstrip().endswith("[pipeline] Trainer done in 2.5 s")
    assert "Epoch 3/10" in (tmp_path / "run.log").read_text()
