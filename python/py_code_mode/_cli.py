"""Console scripts `py-code-mode` and `py-code-mode-mcp`: the Rust CLI, unchanged."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    from py_code_mode._native import cli_main

    # The CLI runs in Rust with the GIL released, where Python's own SIGINT
    # handler would never get to raise: let Ctrl-C end the process as it does
    # for the Rust binaries.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code, message = cli_main(sys.argv)
    if message is not None:
        sys.stderr.write(f"error: {message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
