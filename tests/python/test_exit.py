"""The interpreter exits cleanly after sessions, closed or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_interpreter_exits_cleanly(library: Path) -> None:
    for _ in range(5):
        run = subprocess.run(
            [sys.executable, HERE / "exit_script.py", library],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (run.returncode, run.stderr) == (0, "")
