"""Two `serve --http` servers behind HAProxy with one Redis: sessions pinned by
`Mcp-Session-Id`, the library shared. Skipped where `haproxy` is not installed
(`.ci/run` installs it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from test_mcp_http import connect, run

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy (`apt-get install haproxy`)")


# These tests follow workers by their host pid; a sandboxed worker lives in its
# own pid namespace (the sandbox has its own suites), so the server runs the
# subprocess executor.
SUBPROCESS = ["--executor", "subprocess"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"{what} exited {process.returncode}")
            if time.monotonic() > end:
                pytest.fail(f"{what} did not listen on {port}")
            time.sleep(0.05)


@contextmanager
def started(args: list[str], port: int, what: str, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_for_port(port, process, what)
        yield process
    finally:
        process.kill()
        process.wait()


HAPROXY = """\
global
    maxconn 1000
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend mcp
    bind 127.0.0.1:{lb}
    default_backend servers
backend servers
    balance roundrobin
    # Pin a session to the server that created it: remember the id the server
    # answers `initialize` with, route later requests carrying it there.
    stick-table type string len 128 size 100k expire 30m
    stick store-response res.hdr(mcp-session-id)
    stick match req.hdr(mcp-session-id)
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


def test_two_servers_behind_haproxy_share_one_library(binary: str, tmp_path: Path) -> None:
    redis_port, a, b, lb = free_port(), free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PY_CODE_MODE_TOKEN", None)
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY.format(lb=lb, a=a, b=b))
    with ExitStack() as stack:
        stack.enter_context(
            started(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                redis_port, "redis-server", tmp_path / "redis.log",
            )
        )
        servers = {}
        for name, port in (("a", a), ("b", b)):
            servers[name] = stack.enter_context(
                started(
                    [binary, "--redis", redis_url, "--prefix", "lb-test", "--no-semantic", *SUBPROCESS, "serve", "--http", f"127.0.0.1:{port}"],
                    port, f"server {name}", tmp_path / f"server-{name}.log", env,
                )
            )
        stack.enter_context(started(["haproxy", "-f", str(config), "-db"], lb, "haproxy", tmp_path / "haproxy.log"))
        url = f"http://127.0.0.1:{lb}/mcp"
        server_pids = {p.pid: name for name, p in servers.items()}

        async def scenario() -> None:
            async with connect(url) as s1, connect(url) as s2, connect(url) as s3, connect(url) as s4:
                sessions = [s1, s2, s3, s4]
                homes = []
                for i, session in enumerate(sessions):
                    # Several requests per session: each must reach its own server.
                    assert await run(session, f"n = {i}\n'set'") == ("'set'", False)
                    out, failed = await run(session, "import os\nos.getppid()")
                    assert not failed, out
                    homes.append(server_pids[int(out)])
                    assert await run(session, "n") == (str(i), False)
                assert set(homes) == {"a", "b"}, f"round robin spreads sessions: {homes}"
                on_a = sessions[homes.index("a")]
                on_b = sessions[homes.index("b")]
                out, failed = await run(
                    on_a,
                    "skills.create(name='triple', source='def run(x: int):\\n    return 3 * x', description='Triple a number')\n'ok'",
                )
                assert not failed, out
                assert await run(on_b, "skills.triple(x=14)") == ("42", False)
                assert "triple" in {s["name"] for s in __import__("json").loads((await on_b.call_tool("list_skills", {})).content[0].text)}

        asyncio.run(scenario())
