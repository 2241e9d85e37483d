"""Shared fixtures: the built binary and a fresh library folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("PY_CODE_MODE_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        path = str(Path(target) / "debug" / "py-code-mode")
    if not Path(path).is_file():
        pytest.fail(f"`{path}` does not exist; build it with `cargo build` or run `scripts/test`")
    return path


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    """A copy of examples/base, so tests start from the bundled tools and skills."""
    base = tmp_path / "library"
    shutil.copytree(ROOT / "examples" / "base", base)
    return base
