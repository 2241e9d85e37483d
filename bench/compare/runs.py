"""Median µs of `1+1` and of one function-tool call on a warm session of ours.

    python bench/compare/runs.py in|sub [RUNS]

One line: the two medians. `ab.sh` alternates two wheels with it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

from py_code_mode import FileStorage, InProcessExecutor, Session, SubprocessExecutor


def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


async def main() -> None:
    kind = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    executor = InProcessExecutor() if kind == "in" else SubprocessExecutor(python=sys.executable)
    with tempfile.TemporaryDirectory() as base:
        session = Session(storage=FileStorage(base_path=base), executor=executor, semantic=False, tools=[add])
        await session.start()
        for _ in range(100):
            await session.run("1+1")
            await session.run("tools.add(a=1, b=2)")
        medians = []
        for code in ("1+1", "tools.add(a=1, b=2)"):
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                result = await session.run(code)
                samples.append(time.perf_counter() - started)
                assert result.error is None, result.error
            medians.append(statistics.median(samples) * 1e6)
        await session.close()
    print(" ".join(f"{m:.0f}" for m in medians))


asyncio.run(main())
