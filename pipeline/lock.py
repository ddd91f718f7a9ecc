"""One run at a time per ML Metadata store. A leaf module: importing it loads nothing else."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import pathlib


class RunLocked(RuntimeError):
    """Another run holds the output folder's ML Metadata store; the message names it."""


@contextlib.contextmanager
def exclusive(lock_file: pathlib.Path):
    """Holds an exclusive lock on `lock_file` (created if needed) for the block; raises
    RunLocked at once, naming the holder's pid and start time, if another process holds it.

    One run at a time per ML Metadata store: two runs 20 s apart would otherwise both train
    and push, and each would read the other's summary. An flock is released by the kernel
    when its holder dies, so a killed run never leaves a stale lock behind.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLocked(
                f"another run is using this output folder ({holder}); lock: {lock_file}"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()}, started {started}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
