"""`py-code-mode serve --http`, driven by the official MCP Python SDK's
streamable HTTP client (and raw HTTP where the SDK would not misbehave)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# These tests follow workers by their host pid; a sandboxed worker lives in its
# own pid namespace (the sandbox has its own suites), so the server runs the
# subprocess executor.
SUBPROCESS = ["--executor", "subprocess"]


TOKEN = "t0ken-for-the-http-tests-0123456789"
START_DEADLINE = 60.0

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.base = url.removesuffix("/mcp")

    def stderr(self) -> str:
        return self.log.read_text()


@contextmanager
def http_server(binary: str, library: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    log = library.parent / f"server-{time.monotonic_ns()}.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("PY_CODE_MODE_TOKEN", None) if env is None or "PY_CODE_MODE_TOKEN" not in env else None
    with log.open("w") as err:
        process = subprocess.Popen(
            [binary, "--base", str(library), "--no-semantic", *SUBPROCESS, "serve", "--http", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=full_env,
            cwd=library.parent,
            text=True,
        )
    try:
        deadline = time.monotonic() + START_DEADLINE
        url = None
        while url is None:
            found = re.search(r"serving MCP on (http://\S+)", log.read_text())
            if found:
                url = found.group(1)
            elif process.poll() is not None:
                pytest.fail(f"the server exited {process.returncode}: {log.read_text()}")
            elif time.monotonic() > deadline:
                pytest.fail(f"the server did not start: {log.read_text()}")
            else:
                time.sleep(0.02)
        yield Server(process, url, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@asynccontextmanager
async def connect(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def run(session: ClientSession, code: str) -> tuple[str, bool]:
    result = await session.call_tool("run_code", {"code": code})
    return text(result), bool(result.is_error)


def describe(error: BaseException) -> str:
    """Every message in an exception (group), for matching."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(describe(e) for e in error.exceptions)
    return str(error)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition, what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_many_sessions_have_separate_state(binary: str, library: Path) -> None:
    sessions = 12

    async def one(i: int) -> tuple[int, int]:
        async with connect(server.url) as session:
            out, failed = await run(session, f"x = {i}\nimport os\nos.getpid()")
            assert not failed, out
            pid = int(out)
            await asyncio.sleep(0.05)  # let the others set their `x` meanwhile
            out, failed = await run(session, "x")
            assert (out, failed) == (str(i), False)
            return i, pid

    with http_server(binary, library) as server:
        assert httpx2.get(f"{server.base}/healthz").json() == {"status": "ok"}

        async def all_of_them() -> list[tuple[int, int]]:
            return await asyncio.gather(*(one(i) for i in range(sessions)))

        results = asyncio.run(all_of_them())
        pids = {pid for _, pid in results}
        assert len(pids) == sessions, "every session has its own worker"
        # Closing a session (the SDK sends DELETE) stops its worker.
        wait_until(lambda: not any(pid_alive(p) for p in pids), "the closed sessions' workers to exit")


def test_a_session_cannot_reach_another_sessions_worker(binary: str, library: Path) -> None:
    async def scenario(url: str) -> None:
        async with connect(url) as first, connect(url) as second:
            out, failed = await run(first, "secret = 'first only'\n'ok'")
            assert not failed, out
            out, failed = await run(second, "secret")
            assert failed and "NameError" in out, out
            out, failed = await run(second, "'secret' in globals()")
            assert (out, failed) == ("False", False)

    with http_server(binary, library) as server:
        asyncio.run(scenario(server.url))


def test_a_token_is_required_off_loopback(binary: str, library: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PY_CODE_MODE_TOKEN"}
    done = subprocess.run(
        [binary, "--base", str(library), "--no-semantic", *SUBPROCESS, "serve", "--http", "0.0.0.0:0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "needs a bearer token" in done.stderr, done.stderr
    assert "serving MCP" not in done.stderr


def test_with_a_token_requests_without_it_get_401(binary: str, library: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with http_server(binary, library, "--token-file", str(token_file)) as server:
        missing = httpx2.post(server.url, json=INITIALIZE, headers=ACCEPT)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer " + TOKEN[:-1] + "X"})
        assert wrong.status_code == 401
        longer = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer " + TOKEN + "0"})
        assert longer.status_code == 401

        async def with_token() -> None:
            async with connect(server.url, TOKEN) as session:
                assert await run(session, "6 * 7") == ("42", False)

        asyncio.run(with_token())
        with pytest.raises(Exception):

            async def without() -> None:
                async with connect(server.url) as session:
                    await run(session, "1")

            asyncio.run(without())


def test_the_token_comes_from_the_environment_too(binary: str, library: Path) -> None:
    with http_server(binary, library, env={"PY_CODE_MODE_TOKEN": TOKEN}) as server:
        assert httpx2.post(server.url, json=INITIALIZE, headers=ACCEPT).status_code == 401
        ok = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text


def test_a_short_token_is_refused(binary: str, library: Path) -> None:
    done = subprocess.run(
        [binary, "--base", str(library), "--no-semantic", *SUBPROCESS, "serve", "--http", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env={**os.environ, "PY_CODE_MODE_TOKEN": "short"},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "shorter than 16 characters" in done.stderr, done.stderr


def test_dns_rebinding_is_refused(binary: str, library: Path) -> None:
    """A page on evil.example whose name was rebound to 127.0.0.1 sends its own
    Origin and Host: both are refused; a local client without Origin is served."""
    with http_server(binary, library, "--allowed-origin", "https://app.example:443") as server:
        evil_origin = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Origin": "http://evil.example"})
        assert evil_origin.status_code == 403, evil_origin.text
        port = server.url.split(":")[2].split("/")[0]
        evil_host = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Host": f"evil.example:{port}"})
        assert evil_host.status_code == 403, evil_host.text
        allowed = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Origin": f"http://localhost:{port}"})
        assert allowed.status_code == 200, allowed.text
        listed = httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Origin": "https://app.example"})
        assert listed.status_code == 200, listed.text
        plain = httpx2.post(server.url, json=INITIALIZE, headers=ACCEPT)
        assert plain.status_code == 200, plain.text


def test_oversized_requests_are_refused(binary: str, library: Path) -> None:
    with http_server(binary, library, "--max-request-size", "64k") as server:
        big = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 100_000}}
        response = httpx2.post(server.url, json=big, headers=ACCEPT)
        assert response.status_code == 413, response.text


def test_sessions_past_the_maximum_are_refused(binary: str, library: Path) -> None:
    async def scenario(url: str) -> None:
        async with connect(url) as first, connect(url) as second:
            assert await run(first, "1") == ("1", False)
            assert await run(second, "2") == ("2", False)
            with pytest.raises(BaseException) as refused:
                async with connect(url):
                    pass
            assert re.search(r"too many sessions.*`--max-sessions`", describe(refused.value)), refused.value
        # Both closed: room again.
        async with connect(url) as third:
            assert await run(third, "3") == ("3", False)

    with http_server(binary, library, "--max-sessions", "2") as server:
        asyncio.run(scenario(server.url))


def test_an_idle_session_is_reaped(binary: str, library: Path) -> None:
    with http_server(binary, library, "--session-idle-timeout", "1") as server:
        init = httpx2.post(server.url, json=INITIALIZE, headers=ACCEPT)
        assert init.status_code == 200, init.text
        session_id = init.headers["mcp-session-id"]
        headers = {**ACCEPT, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
        httpx2.post(server.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "run_code", "arguments": {"code": "import os\nos.getpid()"}},
        }
        reply = httpx2.post(server.url, json=call, headers=headers)
        assert reply.status_code == 200, reply.text
        pid = int(re.search(r'"text":\s*"(\d+)"', reply.text).group(1))
        assert pid_alive(pid)
        wait_until(lambda: not pid_alive(pid), "the idle session's worker to be stopped")
        gone = httpx2.post(server.url, json={**call, "id": 3}, headers=headers)
        assert gone.status_code == 404, gone.text


def test_a_session_with_a_run_in_flight_is_not_idle(binary: str, library: Path) -> None:
    """A run longer than the idle timeout, with no progress token (so no
    message moves meanwhile), still gets its result."""
    with http_server(binary, library, "--session-idle-timeout", "1") as server:
        init = httpx2.post(server.url, json=INITIALIZE, headers=ACCEPT)
        headers = {**ACCEPT, "Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        httpx2.post(server.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "run_code", "arguments": {"code": "import time\ntime.sleep(3)\n'awake'"}},
        }
        reply = httpx2.post(server.url, json=call, headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        assert "awake" in reply.text, reply.text


def test_shutdown_lets_a_running_cell_finish(binary: str, library: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    code = f"import time, pathlib\npathlib.Path({str(started)!r}).write_text('1')\ntime.sleep(1.5)\n'finished'"

    async def scenario(server: Server) -> tuple[str, bool]:
        outcome = None
        try:
            async with connect(server.url) as session:
                # The SDK lists the tools before reading a tool's first result
                # (to check it): done now, while the server takes requests.
                await session.list_tools()
                running = asyncio.create_task(run(session, code))
                end = time.monotonic() + 20
                while not started.exists():
                    assert time.monotonic() < end, "the run did not start"
                    await asyncio.sleep(0.02)
                server.process.send_signal(signal.SIGTERM)
                outcome = await running
        except BaseExceptionGroup:
            # Leaving the session talks to a server that has gone meanwhile.
            if outcome is None:
                raise
        return outcome

    with http_server(binary, library) as server:
        out = asyncio.run(scenario(server))
        assert out == ("'finished'", False)
        assert server.process.wait(timeout=20) == 128 + signal.SIGTERM
        assert "panicked" not in server.stderr()


def test_shutdown_stops_a_run_past_the_grace(binary: str, library: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    code = f"import os, time, pathlib\npathlib.Path({str(started)!r}).write_text(str(os.getpid()))\ntime.sleep(120)"

    async def scenario(server: Server) -> None:
        async with connect(server.url) as session:
            running = asyncio.create_task(run(session, code))
            end = time.monotonic() + 20
            while not started.exists() or not started.read_text():
                assert time.monotonic() < end, "the run did not start"
                await asyncio.sleep(0.02)
            server.process.send_signal(signal.SIGTERM)
            try:
                out, failed = await asyncio.wait_for(running, 30)
                assert failed, out
            except (MCPError, Exception):  # the stream may end with the server
                pass

    with http_server(binary, library, "--shutdown-grace", "1") as server:
        asyncio.run(scenario(server))
        assert server.process.wait(timeout=30) == 128 + signal.SIGTERM
        worker = int(started.read_text())
        wait_until(lambda: not pid_alive(worker), "the stopped run's worker to exit")
