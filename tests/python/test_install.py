"""The wheel as a user gets it: a fresh venv, `pip install`, the seed's snippet,
the console scripts, and the stubs under `mypy --strict`."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SEED_SNIPPET = """
import asyncio
from pathlib import Path
from py_code_mode import Session, FileStorage

async def main():
    storage = FileStorage(base_path=Path("./configs"))
    async with Session(storage=storage) as session:
        result = await session.run('tools.list()')
    print(result.is_ok, result.value)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = os.environ.get("PY_CODE_MODE_WHEEL")
    if not wheel:
        pytest.skip("PY_CODE_MODE_WHEEL is not set (scripts/test builds the wheel and sets it)")
    root = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(root, with_pip=True)
    # The wheel has no dependencies: it installs offline.
    subprocess.run(
        [root / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index", wheel],
        check=True,
    )
    return root


def test_seed_snippet_runs_in_a_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [fresh_venv / "bin" / "python", "-c", SEED_SNIPPET],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (run.returncode, run.stdout, run.stderr) == (0, "True []\n", "")
    assert (tmp_path / "configs" / "skills").is_dir()


def test_console_scripts_run_the_cli(fresh_venv: Path, library: Path) -> None:
    for script in ("py-code-mode", "py-code-mode-mcp"):
        listing = subprocess.run(
            [fresh_venv / "bin" / script, "--tools", library / "tools", "--skills", library / "skills",
             "tools", "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listing.returncode == 0, listing.stderr
        assert '"name": "echo"' in listing.stdout

    failed = subprocess.run(
        [fresh_venv / "bin" / "py-code-mode", "--base", library, "run", "-c", "1 / 0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "ZeroDivisionError" in failed.stdout


def test_stubs_pass_mypy_strict() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(HERE / "typed_usage.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
