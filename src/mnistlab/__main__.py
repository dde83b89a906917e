"""The `mnistlab` command and ``python -m mnistlab``."""

import sys


def main() -> None:
    """Load the command line and run it. Ctrl-C while it loads (typer, Rich and every command's module:
    ~0.3 s) ends as it does later, "interrupted" and exit code 130, rather than in a traceback."""
    try:
        from .cli import main as run_command_line
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    run_command_line()


# Guarded: worker processes started with "spawn" import this module again.
if __name__ == "__main__":
    main()
