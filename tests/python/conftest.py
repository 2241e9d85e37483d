"""Fixtures of the Python package suite.

The suite imports the installed `py_code_mode` wheel, as a user would:
scripts/test builds it with maturin and installs it into the test venv, and
passes its path in PY_CODE_MODE_WHEEL for the fresh-venv install test.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import InProcessExecutor, Session, SubprocessExecutor
from py_code_mode.backends.sandbox import SandboxExecutor

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "base"

EXECUTORS: dict[str, Callable[[], Any]] = {
    "inprocess": InProcessExecutor,
    "subprocess": lambda: SubprocessExecutor(python=sys.executable),
    "sandbox": lambda: SandboxExecutor(python=sys.executable),
}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A copy of examples/base (tools echo, list_files, word_count; skills greet, count_words)."""
    base = tmp_path / "library"
    shutil.copytree(EXAMPLES, base)
    return base


@pytest.fixture(params=sorted(EXECUTORS))
def executor_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_executor(executor_kind: str) -> Callable[[], Any]:
    return EXECUTORS[executor_kind]


@pytest.fixture
async def session(library: Path, make_executor: Callable[[], Any]):  # type: ignore[no-untyped-def]
    from py_code_mode import FileStorage

    async with Session(storage=FileStorage(base_path=library), executor=make_executor()) as s:
        yield s
