"""Runs small sessions and exits without closing one of them: the interpreter must
exit cleanly (status 0, nothing on stderr). test_exit.py runs it a few times;
for the 200-run figure in docs/python.md:

    for i in $(seq 200); do python tests/python/exit_script.py BASE || echo crash; done | grep -c crash
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from py_code_mode import FileStorage, Session, SubprocessExecutor


async def main(base: Path) -> None:
    storage = FileStorage(base_path=base)
    async with Session(storage=storage) as session:
        result = await session.run("tools.echo(text='x'); skills.list(); 1 + 1")
        assert result.value == 2, result
    # Left open on purpose: exit must clean up after a forgetful caller.
    left_open = Session(storage=storage, executor=SubprocessExecutor())
    assert (await left_open.run("2 + 2")).value == 4
    in_process = Session(storage=storage)
    assert (await in_process.run("3 + 3")).value == 6


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
