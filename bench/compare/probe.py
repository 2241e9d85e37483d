"""Where a warm subprocess run's time goes, segment by segment.

    python bench/compare/probe.py [RUNS]

Agent code patches the worker's transport (as agent code may: it is the
worker's own process) to note `time.perf_counter()` when its main thread has
read a request and when the result is sent. `perf_counter` is
CLOCK_MONOTONIC, one clock for both processes, so the host's timestamps
around `await session.run("1+1")` line up with them. Prints the median µs of
each segment:

  host→worker          the host writes `execute`; the worker's main thread wakes and parses it
  execute              the runtime runs the cell and builds the result
  result→caller        the result crosses the pipe and wakes the awaiting coroutine
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

from py_code_mode import FileStorage, Session, SubprocessExecutor

PATCH = r'''
import gc, time
_transport = [o for o in gc.get_objects() if type(o).__name__ == "PipeTransport"][0]

_log = []
_next_request = _transport.next_request
def _noting_next_request():
    message = _next_request()
    _log.append(("read", time.perf_counter()))
    return message
_transport.next_request = _noting_next_request
_send = _transport.send
def _noting_send(message):
    if message.get("kind") == "result":
        _log.append(("send", time.perf_counter()))
    return _send(message)
_transport.send = _noting_send
'''


async def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as base:
        executor = SubprocessExecutor(python=sys.executable)
        session = Session(storage=FileStorage(base_path=base), executor=executor, semantic=False)
        await session.start()
        patched = await session.run(PATCH)
        assert patched.error is None, patched.error
        for _ in range(100):
            await session.run("1+1")
        await session.run("_log.clear()")
        host = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await session.run("1+1")
            host.append((started, time.perf_counter()))
            assert result.value == 2, result
        log = (await session.run("list(_log)")).value
        await session.close()
    # The clearing run's own `send` comes first.
    while log and log[0][0] != "read":
        log.pop(0)
    segments: dict[str, list[float]] = {
        "host→worker": [],
        "execute": [],
        "result→caller": [],
        "total": [],
    }
    for (started, ended), events in zip(host, (log[i : i + 2] for i in range(0, 2 * runs, 2))):
        at = dict(events)
        segments["host→worker"].append(at["read"] - started)
        segments["execute"].append(at["send"] - at["read"])
        segments["result→caller"].append(ended - at["send"])
        segments["total"].append(ended - started)
    print("  ".join(f"{name} {statistics.median(values) * 1e6:.0f}" for name, values in segments.items()))


asyncio.run(main())
