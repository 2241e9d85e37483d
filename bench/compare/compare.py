"""py-code-mode side by side with Pydantic Monty and smolagents, in one process.

    scripts/bench-compare [--rounds 300] [--json out.json]

Runs five workloads on four runtimes: py-code-mode's in-process and subprocess
executors, Monty (`pydantic-monty`, a pool of `monty` workers) and smolagents'
`LocalPythonExecutor`. Every round takes one sample of each runtime in turn
(the order rotates every round), so all four share the machine's noise. Prints
the medians and the ratio ours / Monty. Asserts only that each answer is right.

Workloads (see README.md for what each runtime does):
  warm      `1+1` on a warm session
  call      one host call from code: `add(a=1, b=2)`, a Python function
            (a function tool for us, an external function for Monty, a `@tool`
            for smolagents)
  reset     `reset()` then a first result
  session   a new session object, then its first result (close not timed)
  process   a new process: interpreter, imports, session, first result
            (timed to the first line of output, not to exit)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RUNTIMES = ("in-process", "subprocess", "subprocess+pool", "monty", "smolagents")
OURS = ("in-process", "subprocess", "subprocess+pool")
WORKLOADS = {
    "warm": "`1+1` on a warm session",
    "call": "one host call from code",
    "reset": "`reset()` then a first result",
    "session": "new session object → first result",
    "process": "new process → first result",
}
# Samples per runtime relative to --rounds: a new session or process costs far
# more than a warm run, and its median settles with fewer samples.
SCALE = {"warm": 1.0, "call": 1.0, "reset": 1.0, "session": 0.15, "process": 0.06}
# No runtime may suspend the sandbox more than this per Monty checkout; the
# default (1000) would end the `call` workload early.
MONTY_SUSPENSIONS = 10**9


def add(a: int, b: int = 1) -> int:
    """Add two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


Sample = Callable[[], Awaitable[float]]


def timed_sync(work: Callable[[], Any], expect: Any) -> Sample:
    async def sample() -> float:
        started = time.perf_counter()
        value = work()
        elapsed = time.perf_counter() - started
        assert value == expect, value
        return elapsed

    return sample


def timed_async(work: Callable[[], Awaitable[Any]], expect: Any) -> Sample:
    async def sample() -> float:
        started = time.perf_counter()
        value = await work()
        elapsed = time.perf_counter() - started
        assert value == expect, value
        return elapsed

    return sample


class Ours:
    """A py-code-mode executor kind: `in-process`, `subprocess`, or `subprocess+pool` (workers
    started ahead, `pool_size=2`)."""

    def __init__(self, kind: str, base: Path) -> None:
        self.kind = kind
        self.base = base
        self.sessions: list[Any] = []

    def new_session(self) -> Any:
        from py_code_mode import FileStorage, InProcessExecutor, Session, SubprocessExecutor

        if self.kind == "in-process":
            executor = InProcessExecutor()
        else:
            pool_size = 2 if self.kind == "subprocess+pool" else 0
            executor = SubprocessExecutor(python=sys.executable, pool_size=pool_size)
        # Lexical search: no embedding model loading in the background.
        return Session(storage=FileStorage(base_path=self.base), executor=executor, semantic=False, tools=[add])

    async def open(self) -> None:
        self.warm = self.new_session()
        self.resettable = self.new_session()
        for session in (self.warm, self.resettable):
            await session.start()
            self.sessions.append(session)

    async def value(self, session: Any, code: str) -> Any:
        result = await session.run(code)
        if result.error is not None:
            raise RuntimeError(f"{self.kind}: {result.error}")
        return result.value

    def samples(self) -> dict[str, Sample]:
        async def reset_then_run() -> Any:
            await self.resettable.reset()
            return await self.value(self.resettable, "1+1")

        async def new_session() -> float:
            started = time.perf_counter()
            session = self.new_session()
            value = await self.value(session, "1+1")
            elapsed = time.perf_counter() - started
            assert value == 2, value
            await session.close()
            return elapsed

        return {
            "warm": timed_async(lambda: self.value(self.warm, "1+1"), 2),
            "call": timed_async(lambda: self.value(self.warm, "tools.add(a=1, b=2)"), 3),
            "reset": timed_async(reset_then_run, 2),
            "session": new_session,
        }

    def process_code(self) -> str:
        executor = "InProcessExecutor()" if self.kind == "in-process" else "SubprocessExecutor()"
        return (
            "import asyncio\n"
            "from py_code_mode import FileStorage, InProcessExecutor, Session, SubprocessExecutor\n"
            "async def main():\n"
            f"    session = Session(storage=FileStorage(base_path={str(self.base)!r}), executor={executor}, semantic=False)\n"
            "    result = await session.run('1+1')\n"
            "    print(result.value, flush=True)\n"
            "    await session.close()\n"
            "asyncio.run(main())\n"
        )

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


class Monty:
    """Pydantic Monty: a pool of `monty` workers, one checkout per session."""

    kind = "monty"

    async def open(self) -> None:
        import pydantic_monty

        self.module = pydantic_monty
        self.pool = pydantic_monty.Monty(min_processes=2)
        self.pool.__enter__()
        self.warm = self.checkout()

    def checkout(self, pool: Any = None) -> Any:
        session = (pool or self.pool).checkout(limits={"max_suspensions": MONTY_SUSPENSIONS})
        session.__enter__()
        return session

    def samples(self) -> dict[str, Sample]:
        external = {"add": add}
        self.resettable = self.checkout()

        def reset_then_run() -> Any:
            # A fresh REPL: the session goes back to the pool, a new one is checked out.
            self.resettable.__exit__(None, None, None)
            self.resettable = self.checkout()
            return self.resettable.feed_run("1+1")

        async def new_session() -> float:
            started = time.perf_counter()
            pool = self.module.Monty(min_processes=1)
            pool.__enter__()
            session = self.checkout(pool)
            value = session.feed_run("1+1")
            elapsed = time.perf_counter() - started
            assert value == 2, value
            session.__exit__(None, None, None)
            pool.__exit__(None, None, None)
            return elapsed

        return {
            "warm": timed_sync(lambda: self.warm.feed_run("1+1"), 2),
            "call": timed_sync(lambda: self.warm.feed_run("add(a=1, b=2)", external_lookup=external), 3),
            "reset": timed_sync(reset_then_run, 2),
            "session": new_session,
        }

    def process_code(self) -> str:
        return (
            "import pydantic_monty\n"
            "with pydantic_monty.Monty(min_processes=1) as pool:\n"
            "    with pool.checkout() as session:\n"
            "        print(session.feed_run('1+1'), flush=True)\n"
        )

    async def close(self) -> None:
        self.warm.__exit__(None, None, None)
        self.resettable.__exit__(None, None, None)
        self.pool.__exit__(None, None, None)


class Smolagents:
    """smolagents' `LocalPythonExecutor`: an AST interpreter in this process."""

    kind = "smolagents"

    async def open(self) -> None:
        from smolagents import LocalPythonExecutor, tool

        self.executor_class = LocalPythonExecutor
        self.add_tool = tool(add)
        self.warm = self.new_executor()
        self.resettable = self.new_executor()

    def new_executor(self) -> Any:
        executor = self.executor_class(additional_authorized_imports=[])
        executor.send_tools({"add": self.add_tool})
        return executor

    def samples(self) -> dict[str, Sample]:
        def reset_then_run() -> Any:
            # Its state is a dict of variables: a new one is a reset.
            self.resettable.state = {"__name__": "__main__"}
            return self.resettable("1+1").output

        return {
            "warm": timed_sync(lambda: self.warm("1+1").output, 2),
            "call": timed_sync(lambda: self.warm("add(a=1, b=2)").output, 3),
            "reset": timed_sync(reset_then_run, 2),
            "session": timed_sync(lambda: self.new_executor()("1+1").output, 2),
        }

    def process_code(self) -> str:
        return (
            "from smolagents import LocalPythonExecutor\n"
            "print(LocalPythonExecutor(additional_authorized_imports=[])('1+1').output, flush=True)\n"
        )

    async def close(self) -> None:
        pass


def process_sample(code: str) -> Sample:
    async def sample() -> float:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        line = child.stdout.readline()
        elapsed = time.perf_counter() - started
        child.stdout.read()
        child.wait(timeout=60)
        assert line.strip() == "2", line
        return elapsed

    return sample


# Workloads after whose samples the machine settles (see --settle).
SETTLING = ("reset", "session", "process")


async def measure(rounds: int, settle: float, base: Path, workloads: list[str]) -> dict[str, dict[str, list[float]]]:
    runtimes: dict[str, Any] = {
        "in-process": Ours("in-process", base),
        "subprocess": Ours("subprocess", base),
        "subprocess+pool": Ours("subprocess+pool", base),
        "monty": Monty(),
        "smolagents": Smolagents(),
    }
    for runtime in runtimes.values():
        await runtime.open()
    plans: dict[str, dict[str, Sample]] = {name: r.samples() for name, r in runtimes.items()}
    for name, runtime in runtimes.items():
        plans[name]["process"] = process_sample(runtime.process_code())
    samples: dict[str, dict[str, list[float]]] = {w: {r: [] for r in RUNTIMES} for w in workloads}
    try:
        for workload in workloads:
            count = max(5, round(rounds * SCALE[workload]))
            # Warm-up, not recorded: caches, pools and lazy imports.
            for name in RUNTIMES:
                for _ in range(3 if workload in ("session", "process") else 20):
                    await plans[name][workload]()
            for index in range(count):
                turn = index % len(RUNTIMES)
                order = RUNTIMES[turn:] + RUNTIMES[:turn]
                for name in order:
                    samples[workload][name].append(await plans[name][workload]())
                    if workload in SETTLING:
                        await asyncio.sleep(settle)
            print(f"  {workload}: {count} rounds", file=sys.stderr, flush=True)
    finally:
        for runtime in runtimes.values():
            await runtime.close()
    return samples


def versions() -> str:
    from importlib.metadata import version

    names = ("py-code-mode", "pydantic-monty", "smolagents")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except Exception:  # noqa: BLE001 - a missing one is reported, not fatal here
            found.append(f"{name} ?")
    return ", ".join(found) + f"; Python {platform.python_version()}"


def table(samples: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "| workload | in-process | subprocess | subprocess + pool | Monty | smolagents |",
        "|---|---|---|---|---|---|",
    ]
    for workload, title in WORKLOADS.items():
        if workload not in samples:
            continue
        medians = {r: statistics.median(samples[workload][r]) * 1000 for r in RUNTIMES}
        monty = medians["monty"]
        cells = []
        for runtime in RUNTIMES:
            cell = f"{medians[runtime]:.3f} ms" if medians[runtime] < 10 else f"{medians[runtime]:.1f} ms"
            if runtime in OURS:
                cell += f" ({medians[runtime] / monty:.2f}×)"
            cells.append(cell)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300, help="samples per runtime of the warm workloads")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.05,
        help="seconds of pause after each sample of reset/session/process, untimed: the work a "
        "runtime does in the background after answering (a spare worker, a pool refill) ends "
        "before the next runtime's sample, as it would during an agent's think time",
    )
    parser.add_argument("--json", type=Path, help="also write every sample (seconds) here")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(WORKLOADS),
        default=list(WORKLOADS),
        metavar="WORKLOAD",
        help=f"measure only these workloads ({', '.join(WORKLOADS)})",
    )
    args = parser.parse_args()
    for module, package in (("py_code_mode", "py-code-mode"), ("pydantic_monty", "pydantic-monty"), ("smolagents", "smolagents")):
        try:
            __import__(module)
        except ImportError:
            sys.exit(f"`{package}` is not installed in {sys.prefix}\nhint: run scripts/bench-compare, which makes its venv")

    load = os.getloadavg()[0]
    print(f"{versions()}; load {load:.2f}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        samples = asyncio.run(measure(args.rounds, args.settle, Path(tmp), args.only))
    print(f"\nmedians in one process, interleaved; ratio = ours / Monty ({versions()})")
    counts = ", ".join(f"{w} {len(samples[w]['monty'])}" for w in samples)
    print(f"samples per runtime: {counts}; settle {args.settle}s")
    print(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print(table(samples))
    if args.json:
        args.json.write_text(json.dumps({"versions": versions(), "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
