"""`pool_size=`: new sessions start on workers started ahead, and never share one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from py_code_mode import FileStorage, Session, SubprocessExecutor
from py_code_mode.backends.sandbox import SandboxConfig, SandboxExecutor


def executors(pool_size: int) -> dict[str, object]:
    return {
        "subprocess": SubprocessExecutor(python=sys.executable, pool_size=pool_size),
        "sandbox": SandboxExecutor(SandboxConfig(pool_size=pool_size), python=sys.executable),
    }


@pytest.mark.parametrize("kind", ["subprocess", "sandbox"])
async def test_pooled_sessions_never_share_a_worker_or_its_state(kind: str, tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    seen = []
    for _ in range(3):
        async with Session(storage=storage, executor=executors(2)[kind]) as session:
            result = await session.run("import json\nprint(globals().get('mine'))\nmine = 1\njson.MARK = 1\n")
            assert result.stdout == "None\n", result
            result = await session.run("import json, os\n(hasattr(json, 'MARK'), os.getpid(), os.getcwd())")
            assert result.error is None, result.error
            seen.append(result.value)
    assert all(value[0] for value in seen)
    if kind == "subprocess":
        # Three sessions, three workers, three scratch folders. (A sandboxed
        # worker is pid 2 in `/tmp` of its own namespaces: no state leaked
        # above is what shows it was not shared.)
        assert len({value[1] for value in seen}) == 3
        assert len({value[2] for value in seen}) == 3


@pytest.mark.parametrize("size", [-1, 17])
def test_a_pool_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises((ValueError, OverflowError)):
        SubprocessExecutor(pool_size=size)
    with pytest.raises((ValueError, OverflowError)):
        SandboxConfig(pool_size=size)
