"""The `mnistlab` command line: a thin shell over the Python API.

One module per command group (data, train, runs, predict, recipes, benchmark, export, serve);
``common`` holds the app, the consoles and the shared options. Every command
that writes puts its files under one folder, ``./mnistlab-out`` by default
(``--out`` or ``MNISTLAB_OUT``). Bad input (a ``MnistlabError``) ends in one
line on stderr and exit code 2, its parameter named by its flag; anything
else is a bug and is reported as one.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Annotated

import typer
from typer.exceptions import TyperException
from rich.text import Text

from .._io import FolderInTheWay, unstaged
from .._system import start_waiting_thread
from ..errors import (MnistlabError, OtherFitsCheckpointError, ParameterError, UnusedParameterWarning, one_line,
                      paths_relative, printable, raised_at)
from .common import app, err_console, keep_stdout_for_json

# Each module registers its commands; the order here is the order `mnistlab --help` lists them.
from . import data, train, runs, predict, recipes, benchmark, export, serve  # noqa: E402, F401, I001 isort: skip

_options = {"debug": False}


@app.callback()
def _global_options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an unexpected error.")] = False) -> None:
    _options["debug"] = debug


def error_line(exc: MnistlabError | UnusedParameterWarning) -> str:
    """The one line a user sees for bad input (or a setting given in vain); a parameter is named by its flag."""
    if isinstance(exc, (ParameterError, OtherFitsCheckpointError, UnusedParameterWarning)) and exc.parameter:
        return f"--{exc.parameter.replace('_', '-')}: {exc.problem}"
    return str(exc)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning (a library's, say NumPy's overflow) as one line; where it was raised only under --debug, in
    mnistlab (not the frame the API's users are shown theirs at, here typer's)."""
    if _options["debug"]:
        raised = raised_at(filename, lineno, sys._getframe(1))
        _python_showwarning(message, category, *raised, file, line if raised == (filename, lineno) else None)
    else:
        text = error_line(message) if isinstance(message, UnusedParameterWarning) else message
        err_console.print(Text.assemble(("warning:", "yellow"), f" {printable(one_line(text))}"), highlight=False,
                          soft_wrap=True)


# A machine's state or a path given, not a bug: said in one line, like bad input (a full disk, a folder that
# may not be written; a file where a folder must be, or the reverse; a name too long, a loop of links; another
# user's run in a shared sticky folder, which may not be replaced: EPERM; a file-size limit, ulimit -f: EFBIG).
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
                  errno.ENAMETOOLONG, errno.ELOOP, errno.EPERM, errno.EFBIG}


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds as Ctrl-C does: staging folders, locks and drawing children go


STOP_GRACE = 10.0  # seconds a Ctrl-C or SIGTERM has to unwind the command before it is ended outright


def _end_if_stuck() -> None:
    """End the process ``STOP_GRACE`` seconds after a Ctrl-C or SIGTERM that has not ended it: Python runs a
    signal's handler between bytecodes only, and a fit inside C code runs on (libsvm's solver went on 65 s
    past a SIGTERM, a Zalando grid for ever). What it leaves half-made is swept as a killed command's is.
    (Not for serve, whose event loop takes the wakeup descriptor over; nor where Python has none of this.)"""
    try:
        read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)  # written by the C handler, whatever Python does
    except (AttributeError, OSError, ValueError):
        return
    # a forked child's signals are its own: written to this pipe, one sent to the child would end this process
    os.register_at_fork(after_in_child=lambda: signal.set_wakeup_fd(-1))

    def watch() -> None:
        while (signum := os.read(read, 1)[0]) not in (signal.SIGINT, signal.SIGTERM):
            pass
        time.sleep(STOP_GRACE)
        err_console.print("interrupted" if signum == signal.SIGINT else "terminated")
        os._exit(128 + signum)

    start_waiting_thread(watch, "end-if-stuck")  # figures still draw in a forked child beside it


def main(loading_handler: Callable | None = None) -> None:
    """Console-script entry (``loading_handler``: the SIGINT handler ``__main__`` ended the process with while
    this loaded, given back to KeyboardInterrupt here): bad input becomes one line and exit code 2, and so does a
    full disk, a folder that may not be written or too little memory; anything else is a bug, said to be one (with
    its traceback under --debug), exit code 1. Warnings are one line each. Ctrl-C (typer's exit code
    130) and SIGTERM (143: timeout, systemd, docker stop) leave nothing half-written."""
    warnings.showwarning = _show_warning
    signal.signal(signal.SIGTERM, _terminated)
    _end_if_stuck()
    try:
        # Ctrl-C is KeyboardInterrupt from here on (typer's 130); while the command line loaded __main__ ended
        # the process on it. Any other handler (ignored in a job started with & by a script; a caller's) stays.
        if loading_handler is not None and signal.getsignal(signal.SIGINT) is loading_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        given = sys.argv[1:sys.argv.index("--") if "--" in sys.argv else None]
        if "--json" in given and not {"--help", "-h"} & set(given):  # help is no JSON: it stays on stdout
            keep_stdout_for_json()
        with paths_relative():  # the lines a terminal shows name paths as its user would type them
            code = app(standalone_mode=False)  # returns an Exit's code (130 for Ctrl-C); usage errors are raised
        if code == 130:
            err_console.print("interrupted")
        sys.exit(code or 0)
    except KeyboardInterrupt:  # Ctrl-C before typer runs the command (while it builds it), where typer cannot see it
        err_console.print("interrupted")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:  # said as Ctrl-C's "interrupted" is (and as _end_if_stuck says it)
            err_console.print("terminated")
        raise
    except TyperException as exc:  # a usage error (click's, which typer carries): typer's own is five lines
        if not exc.format_message():  # a group called bare: its help, printed already, says it all
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        _error_line(exc.format_message() + (f" (see `{ctx.command_path} --help`)" if ctx else ""))
    except MnistlabError as exc:
        _error_line(error_line(exc))
    except MemoryError as exc:  # what was asked for (a layer of 10^8 units, say) does not fit this machine
        _error_line(f"not enough memory: {one_line(exc)}")
    except OSError as exc:
        # EPERM without a file (os.kill, sched_setaffinity) is more likely a bug than the machine's state
        if exc.errno in MACHINE_ERRNOS and (exc.filename or exc.errno != errno.EPERM):
            # make_folder's names its file already: said as it is, not with the name again
            _error_line(f"{exc.strerror}: {unstaged(exc.filename)}" if exc.filename and
                        not isinstance(exc, FolderInTheWay) else one_line(exc))
        _report_bug(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, not bad input
        _report_bug(exc)


def _error_line(text: str) -> None:
    # printable: a path or name quoted from the input may hold a newline (a second, false "error:" line)
    # or an escape sequence (it would reach the terminal)
    err_console.print(Text.assemble(("error:", "red"), f" {printable(text)}"), highlight=False, soft_wrap=True)
    sys.exit(2)


def _report_bug(exc: Exception) -> None:
    if _options["debug"]:
        traceback.print_exc()
    err_console.print(Text.assemble(("internal error:", "red"), f" {type(exc).__name__}: {printable(str(exc))}\n"
                                    "This is a bug in mnistlab, not a problem with your input: please report "
                                    "it, with the traceback that --debug shows."), highlight=False, soft_wrap=True)
    sys.exit(1)
