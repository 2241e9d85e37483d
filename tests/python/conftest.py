"""Fixtures of the Python package suite.

The suite imports the installed `py_code_mode` wheel, as a user would:
scripts/test builds it with maturin and installs it into the test venv, and
passes its path in PY_CODE_MODE_WHEEL for the fresh-venv install test.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import InProcessExecutor, Session, SubprocessExecutor
from py_code_mode.backends.sandbox import SandboxExecutor
from py_code_mode.backends.container import ContainerConfig, ContainerExecutor

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "base"

EXECUTORS: dict[str, Callable[[], Any]] = {
    "inprocess": InProcessExecutor,
    "subprocess": lambda: SubprocessExecutor(python=sys.executable),
    "sandbox": lambda: SandboxExecutor(python=sys.executable),
    # Needs a Docker daemon and the worker image (scripts/test provides both):
    # without them these cases fail with the executor's error, never skip.
    "container": lambda: ContainerExecutor(
        ContainerConfig(image=os.environ.get("PY_CODE_MODE_TEST_IMAGE", "py-code-mode:latest"), pool_size=1)
    ),
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
