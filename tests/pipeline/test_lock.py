"""One run at a time per ML Metadata store: the second refuses at once, naming the holder."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pipeline import lock as lock_module

pytestmark = pytest.mark.unit


def test_a_second_run_refuses_at_once_naming_the_holder(tmp_path):
    lock = tmp_path / "metadata" / "flight_delay.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pipeline import lock as lock_module
                with lock_module.exclusive(__import__("pathlib").Path({str(lock)!r})):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            lock_module.RunLocked, match=rf"pid {holder.pid}, started .*{lock.name}"
        ):
            with lock_module.exclusive(lock):
                pass
    finally:
        holder.communicate("done\n", timeout=30)
    # Released when its holder ends (also when killed: the kernel drops an flock).
    with lock_module.exclusive(lock):
        assert f"pid {__import__('os').getpid()}" in lock.read_text()
    assert lock.read_text() == ""
