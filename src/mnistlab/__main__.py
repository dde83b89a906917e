"""The `mnistlab` command and ``python -m mnistlab``."""

import os

import _signal  # signal's own C module: signal imports enum (7 ms) before the handler below would be in place


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
    (a job started with & by a script) it stays so."""
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _interrupted_while_loading)
    from .cli import main as run_command_line

    run_command_line()


# Guarded: worker processes started with "spawn" import this module again.
if __name__ == "__main__":
    main()
