"""What a run shows on the terminal, and the log file that takes everything else.

By default a run shows only its own lines: the landing, one line per component with its
elapsed time, a live status on long steps, the summary. The libraries' output goes to a log
file: TensorFlow's C++ start-up messages ("Unable to register cuDNN factory ..."), Beam's
warnings, KerasTuner's search-space dump and trial tables, Keras' epoch lines, the TFLite
converter's `W0000` lines, Python logging and warnings. `capture` redirects the file
descriptors 1 and 2, not just `sys.stdout`, because C++ code writes to them directly.

A leaf module: it imports nothing of ours and no TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

# The lines of a long step worth showing live, as they appear in the log: Keras' epoch
# lines (tf_keras progbar, verbose=2) and KerasTuner's trial headers.
_LIVE = re.compile(r"^(?:Epoch (?P<epoch>\d+/\d+)|Search: Running Trial #(?P<trial>\d+))")
_TICK_SECONDS = 1.0


class _State:
    console: TextIO | None = None  # the terminal while capturing, else None (sys.stdout)
    errors: TextIO | None = None  # the terminal's stderr while capturing, else None
    log_path: pathlib.Path | None = None
    step: tuple[str, float] | None = None  # (what, monotonic start) of the long step shown
    detail = ""


def out() -> TextIO:
    """The stream for the run's own lines: the terminal (sys.stdout when not capturing)."""
    return _State.console or sys.stdout


def say(message: str, error: bool = False) -> None:
    """Prints one line of the run's own output on the terminal (its stderr when `error`),
    above any live status."""
    stream = (_State.errors or sys.stderr) if error else out()
    if _live(stream):
        stream.write("\r\033[K")
    print(message, file=stream, flush=True)


def quiet_libraries() -> None:
    """For a short command (lineage, monitor) whose output is its own: TensorFlow's C++ logs
    below FATAL, Python warnings and the libraries' log records below ERROR are not shown.
    Call it before TensorFlow is imported (TF_CPP_MIN_LOG_LEVEL is read then)."""
    import logging
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)  # google-api-core's notices
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("", "tensorflow", "absl"):  # Beam's and TFMA's import-time warnings
        logging.getLogger(name).setLevel(logging.ERROR)


def log_path() -> pathlib.Path | None:
    """Where the libraries' output is being written; None when it goes to the terminal."""
    return _State.log_path


def move_log(destination: pathlib.Path) -> pathlib.Path | None:
    """Moves the log file (still open, still written) to `destination`; returns the new
    path, or None when nothing is captured. Used to file a run's log in its run folder once
    the folder's name (ML Metadata's run id) is known."""
    if _State.log_path is None:
        return None
    destination.parent.mkdir(parents=True, exist_ok=True)
    _State.log_path = pathlib.Path(_State.log_path.rename(destination))
    return _State.log_path


def start_step(what: str) -> None:
    """Starts a step: a live status line with its elapsed time on a terminal, redrawn until
    `end_step`; one "... " line elsewhere (a CI log, a pipe)."""
    _State.step, _State.detail = (what, time.monotonic()), ""
    if not _live(out()):
        say(f"[pipeline] {what} ...")


def end_step() -> None:
    """Ends the live status line."""
    step, _State.step = _State.step, None
    stream = out()
    if step is not None and _live(stream):
        stream.write("\r\033[K")
        stream.flush()


def _live(stream: TextIO) -> bool:
    return _State.console is not None and stream.isatty()


def _status_line() -> str | None:
    if _State.step is None:
        return None
    what, started = _State.step
    detail = f" · {_State.detail}" if _State.detail else ""
    return f"[pipeline] {what} ... {time.monotonic() - started:.0f} s{detail}"


def live_detail(line: str) -> str | None:
    """What a captured log line tells about a long step's progress ("epoch 3/10",
    "trial 2"), or None when it tells nothing."""
    match = _LIVE.match(line)
    if match is None:
        return None
    return f"epoch {match['epoch']}" if match["epoch"] else f"trial {match['trial']}"


def _follow(path_of, stop: threading.Event, console: TextIO) -> None:
    """Tails the log for live details and redraws the status line once a second."""
    position = 0
    while not stop.wait(_TICK_SECONDS):
        path = path_of()
        with contextlib.suppress(OSError), open(path, "rb") as log:
            log.seek(position)
            for raw in log.read().splitlines():
                if detail := live_detail(raw.decode("utf-8", "replace").strip()):
                    _State.detail = detail
            position = log.tell()
        if (line := _status_line()) is not None:
            console.write("\r\033[K" + line[: _width(console) - 1])
            console.flush()


def _width(terminal: TextIO) -> int:
    try:
        return os.get_terminal_size(terminal.fileno()).columns or 80
    except (OSError, ValueError):  # not a terminal, or closed
        return 80


@contextlib.contextmanager
def capture(log_file: pathlib.Path) -> Iterator[pathlib.Path]:
    """Sends everything written to file descriptors 1 and 2 (and sys.stdout, sys.stderr) to
    `log_file` for the block; `say` keeps writing to the terminal, with a live status line
    when the terminal is a TTY. On exit, even by an exception, the descriptors are restored,
    so a traceback raised out of the block reaches the terminal in full.

    Raises OSError when `log_file` cannot be created.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    console, errors = _terminal(sys.stdout, 1), _terminal(sys.stderr, 2)
    stop = threading.Event()
    with open(log_file, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = open(os.dup(1), "w", buffering=1, closefd=True, errors="replace")
        _State.console, _State.errors, _State.log_path = console, errors, log_file
        follower = None
        if console.isatty():
            follower = threading.Thread(
                target=_follow, args=(lambda: _State.log_path, stop, console), daemon=True
            )
            follower.start()
        try:
            yield log_file
        finally:
            stop.set()
            if follower is not None:
                follower.join()
            end_step()
            sys.stdout.flush()
            sys.stdout.close()
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            _State.console, _State.errors, _State.log_path = None, None, None
            for stream, original in ((console, streams[0]), (errors, streams[1])):
                if stream is not original:
                    stream.close()


def _terminal(stream: TextIO, fd: int) -> TextIO:
    """A stream that keeps reaching what `stream` reaches once `fd` is redirected: a copy of
    the descriptor when `stream` writes to it, else `stream` itself (e.g. a test's capture)."""
    try:
        backed = stream.fileno() == fd
    except (OSError, ValueError, AttributeError):
        backed = False
    return open(os.dup(fd), "w", buffering=1) if backed else stream
