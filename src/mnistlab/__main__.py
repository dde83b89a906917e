"""The `mnistlab` command and ``python -m mnistlab``."""

import os
import signal
import sys


def _interrupted_while_loading(signum, frame) -> None:
    # Nothing is written yet, so the process ends at once. A KeyboardInterrupt raised amid the imports could land
    # where Python only prints it and goes on (a weakref callback of the import lock's: "Exception ignored", and
    # the command ran to exit code 0), or in a line before cli.main's guard (its watchdog thread's start).
    os.write(2, b"interrupted\n")
    os._exit(130)


def main() -> None:
    """Load the command line and run it. Ctrl-C while it loads (typer, Rich and every command's module:
    ~0.3 s) ends as it does later, "interrupted" and exit code 130, rather than in a traceback: until cli.main
    is inside its guard, where Ctrl-C is KeyboardInterrupt again, it ends the process. Where Ctrl-C is ignored
    (a job started with & by a script) it stays so, and so does IPython's: run in a kernel (runpy, %run -m), ending
    the process ended the kernel, with the notebook's state."""
    loading = signal.getsignal(signal.SIGINT) is signal.default_int_handler and "IPython" not in sys.modules
    if loading:
        signal.signal(signal.SIGINT, _interrupted_while_loading)
    from .cli import main as run_command_line

    run_command_line(loading_handler=_interrupted_while_loading if loading else None)


# Guarded: worker processes started with "spawn" import this module again.
if __name__ == "__main__":
    main()
