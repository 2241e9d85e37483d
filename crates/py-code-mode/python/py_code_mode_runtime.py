"""py-code-mode runtime: runs agent code with `tools`, `skills` and `artifacts` bound.

One file serves every executor. The subprocess worker runs it as a script
(`python -I -c <this file>`) and speaks newline-delimited JSON with the host over
a private copy of its stdout; the in-process executor of the Python bindings
imports it and drives `Runtime` with a direct transport. Every side effect
outside the interpreter (tool calls, storage, search) is a call to the host; this
file owns only interpreter state. The protocol is documented in docs/protocol.md.
"""

from __future__ import annotations

import ast
import base64
import contextvars
import io
import json
import linecache
import os
import sys
import textwrap
import threading
import time
import traceback
from concurrent.futures import Future
from typing import Any, Callable

PROTOCOL_VERSION = 1

# Captured stdout/stderr per run are capped so a print loop cannot exhaust host memory.
DEFAULT_OUTPUT_LIMIT = 1024 * 1024

# Names a skill may not take because the `skills` namespace uses them itself.
RESERVED_SKILL_NAMES = frozenset({"list", "search", "get", "create", "delete", "invoke"})


# --------------------------------------------------------------------------- errors


class CodeModeError(Exception):
    """Base class of the errors the host reports to agent code."""


class ToolNotFoundError(CodeModeError, AttributeError):
    """No tool (or tool callable) has that name."""


class ToolError(CodeModeError):
    """A tool ran and failed (non-zero exit, timeout, server error)."""


class SkillNotFoundError(CodeModeError, AttributeError):
    """No skill has that name."""


class SkillError(CodeModeError):
    """A skill could not be created, parsed or run."""


class ArtifactNotFoundError(CodeModeError, KeyError):
    """No artifact has that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidNameError(CodeModeError, ValueError):
    """A name tries to escape its folder or key prefix, or is not allowed."""


class StorageError(CodeModeError):
    """The storage backend failed."""


# The exceptions agent code can catch by name (`except ToolError:`); bound in its globals.
EXCEPTIONS: tuple[type[CodeModeError], ...] = (
    CodeModeError,
    ToolNotFoundError,
    ToolError,
    SkillNotFoundError,
    SkillError,
    ArtifactNotFoundError,
    InvalidNameError,
    StorageError,
)
for _cls in EXCEPTIONS:
    # Tracebacks then print `ToolError: ...` whichever module loaded this file
    # (`__main__` in the worker, a package module in-process): one result shape.
    _cls.__module__ = "builtins"

# Host errors by the name the host gives them; bad arguments raise the builtin TypeError.
_ERRORS: dict[str, type[Exception]] = {"TypeError": TypeError, **{c.__name__: c for c in EXCEPTIONS}}


def _host_error(error: dict[str, Any]) -> Exception:
    cls = _ERRORS.get(error.get("type", ""), CodeModeError)
    return cls(error.get("message", "host call failed"))


# --------------------------------------------------------------------------- transports


class PipeTransport:
    """Newline-delimited JSON over a pair of binary pipes (the subprocess worker).

    A reader thread owns the input pipe: `execute` messages go to a queue the main
    thread serves, `response` messages resolve the future of the call they answer.
    That lets several calls be outstanding at once (asyncio.gather over tools).
    """

    def __init__(self, rfile: io.BufferedReader, wfile: io.BufferedWriter) -> None:
        import queue

        self._rfile = rfile
        self._wfile = wfile
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._pending_lock = threading.Lock()
        self._next_id = 0
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read_loop, name="py-code-mode-reader", daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        with self._write_lock:
            self._wfile.write(data)
            self._wfile.flush()

    def _read_loop(self) -> None:
        for line in self._rfile:
            message = json.loads(line)
            if message.get("kind") == "response":
                with self._pending_lock:
                    future = self._pending.pop(message["id"], None)
                if future is not None:
                    future.set_result(message)
            else:
                self.requests.put(message)
        # The host closed our stdin: wake the main loop so the worker exits.
        self.requests.put(None)
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_result({"error": {"type": "CodeModeError", "message": "host went away"}})

    def start_call(self, method: str, params: dict[str, Any]) -> Future:
        future: Future = Future()
        with self._pending_lock:
            self._next_id += 1
            call_id = self._next_id
            self._pending[call_id] = future
        self.send({"kind": "call", "id": call_id, "method": method, "params": params})
        return future

    def call(self, method: str, params: dict[str, Any]) -> Any:
        return _unwrap(self.start_call(method, params).result())

    async def acall(self, method: str, params: dict[str, Any]) -> Any:
        import asyncio

        return _unwrap(await asyncio.wrap_future(self.start_call(method, params)))


class DirectTransport:
    """Calls the host through a Python callable (the in-process executor).

    `handler(method, params_json) -> response_json` blocks while the host works
    (the bindings release the GIL meanwhile); `acall` runs it on a thread so
    concurrent awaits overlap.
    """

    def __init__(self, handler: Callable[[str, str], str]) -> None:
        self._handler = handler

    def call(self, method: str, params: dict[str, Any]) -> Any:
        return _unwrap(json.loads(self._handler(method, json.dumps(params))))

    async def acall(self, method: str, params: dict[str, Any]) -> Any:
        import asyncio

        return await asyncio.to_thread(self.call, method, params)


def _unwrap(response: dict[str, Any]) -> Any:
    if "error" in response:
        raise _host_error(response["error"])
    return response.get("ok")


# --------------------------------------------------------------------------- namespaces


class Record(dict):
    """A JSON object that also reads as attributes (`skill.source`, `tool.name`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class ToolCallable:
    """`tools.nmap(...)`, `tools.web.fetch(...)`, and `await tools.nmap.acall(...)`."""

    def __init__(self, transport: Any, name: str) -> None:
        self._transport = transport
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._transport.call("tools.call", {"name": self._name, "args": _kwargs(self._name, args, kwargs)})

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Awaitable form, so several tool calls can run concurrently."""
        return await self._transport.acall(
            "tools.call", {"name": self._name, "args": _kwargs(self._name, args, kwargs)}
        )

    def list(self) -> list[Record]:
        """The tool's callables: CLI recipes, an MCP server's tools, HTTP endpoints."""
        for tool in self._transport.call("tools.list", {}):
            if tool["name"] == self._name:
                return [Record(c) for c in tool["callables"] if c["name"] != self._name]
        raise ToolNotFoundError(f"no tool named `{self._name}`")

    def __getattr__(self, name: str) -> "ToolCallable":
        if name.startswith("_"):
            raise AttributeError(name)
        return ToolCallable(self._transport, f"{self._name}.{name}")

    def __repr__(self) -> str:
        return f"<tool {self._name}>"


def _kwargs(name: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    if args:
        raise TypeError(f"tool `{name}` takes keyword arguments only, e.g. tools.{name}(target=...)")
    return kwargs


class Tools:
    """The `tools` namespace: call, list and search the host's tools."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> ToolCallable:
        if name.startswith("_"):
            raise AttributeError(name)
        return ToolCallable(self._transport, name)

    def call(self, name: str, args: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Call a tool by name: `tools.call("nmap", {"target": "10.0.0.1"})`."""
        return self._transport.call("tools.call", {"name": name, "args": {**(args or {}), **kwargs}})

    def list(self) -> list[Record]:
        """Every tool with its description and callables."""
        return [Record(t) for t in self._transport.call("tools.list", {})]

    def search(self, query: str, limit: int = 10) -> list[Record]:
        """Tools ranked by relevance to `query`."""
        return [Record(t) for t in self._transport.call("tools.search", {"query": query, "limit": limit})]

    def __dir__(self) -> list[str]:
        return ["call", "list", "search", *(t["name"] for t in self.list())]

    def __repr__(self) -> str:
        return "<tools: call tools.<name>(**kwargs); tools.list(); tools.search(query)>"


class Skills:
    """The `skills` namespace: find, inspect, invoke, create and delete skills.

    Skill code runs here, in the executor, never on the host.
    """

    def __init__(self, transport: Any, runtime: "Runtime") -> None:
        self._transport = transport
        self._runtime = runtime

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            return self.invoke(name, *args, **kwargs)

        invoke.__name__ = name
        return invoke

    def invoke(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run skill `name` with the given arguments and return its result."""
        skill = self.get(name)
        return self._runtime.run_skill(skill, args, kwargs)

    def list(self) -> list[Record]:
        """Every skill: name, description, parameters (no source)."""
        return [Record(s) for s in self._transport.call("skills.list", {})]

    def search(self, query: str, limit: int = 5) -> list[Record]:
        """Skills ranked by relevance to `query`."""
        return [Record(s) for s in self._transport.call("skills.search", {"query": query, "limit": limit})]

    def get(self, name: str) -> Record:
        """One skill with `.name`, `.description`, `.parameters` and `.source`."""
        return Record(self._transport.call("skills.get", {"name": name}))

    def create(
        self,
        name: str,
        code: str | None = None,
        description: str = "",
        *,
        source: str | None = None,
    ) -> Record:
        """Save a new skill (or replace one). `code=` and `source=` are synonyms."""
        if (code is None) == (source is None):
            raise TypeError("skills.create() takes exactly one of `code=` or `source=`")
        text = textwrap.dedent(code if code is not None else source or "")
        return Record(
            self._transport.call("skills.create", {"name": name, "source": text, "description": description})
        )

    def delete(self, name: str) -> bool:
        """Delete skill `name`; returns whether it existed."""
        return bool(self._transport.call("skills.delete", {"name": name}))

    def __repr__(self) -> str:
        return "<skills: skills.<name>(**kwargs); list(); search(query); get(name); create(name, code, description)>"


class Artifacts:
    """The `artifacts` namespace: named data that outlives the session."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def save(
        self, name: str, data: Any, description: str = "", metadata: dict[str, Any] | None = None
    ) -> Record:
        """Save `data` (JSON-able value, str or bytes) under `name`."""
        params = {"name": name, "data": _encode_data(data), "description": description, "metadata": metadata or {}}
        return Record(self._transport.call("artifacts.save", params))

    def load(self, name: str) -> Any:
        """The data saved under `name`, with the type it was saved with."""
        return _decode_data(self._transport.call("artifacts.load", {"name": name}))

    def list(self) -> list[Record]:
        """Every artifact: name, description, type, size, metadata, timestamps."""
        return [Record(a) for a in self._transport.call("artifacts.list", {})]

    def exists(self, name: str) -> bool:
        return bool(self._transport.call("artifacts.exists", {"name": name}))

    def delete(self, name: str) -> bool:
        """Delete artifact `name`; returns whether it existed."""
        return bool(self._transport.call("artifacts.delete", {"name": name}))

    def __repr__(self) -> str:
        return "<artifacts: save(name, data, description); load(name); list(); exists(name); delete(name)>"


def _encode_data(data: Any) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return {"type": "bytes", "base64": base64.b64encode(bytes(data)).decode()}
    if isinstance(data, str):
        return {"type": "text", "value": data}
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"artifact data must be JSON-able, str or bytes: {exc}") from None
    return {"type": "json", "value": data}


def _decode_data(data: dict[str, Any]) -> Any:
    if data["type"] == "bytes":
        return base64.b64decode(data["base64"])
    return data["value"]


# --------------------------------------------------------------------------- output capture


class _Capture(io.TextIOBase):
    """One run's stdout or stderr, capped at `limit` bytes with a visible marker."""

    def __init__(self, limit: int) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit
        self._dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "replace"))
        room = self._limit - self._size
        if size <= room:
            self._parts.append(text)
            self._size += size
        else:
            kept = text.encode("utf-8", "replace")[: max(room, 0)].decode("utf-8", "ignore")
            self._parts.append(kept)
            self._size += len(kept.encode())
            self._dropped += size - len(kept.encode())
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[... output truncated: {self._dropped} more bytes]\n"
        return text


class _Router(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: writes go to the current run's capture.

    The target lives in a context variable, so only the run (and asyncio tasks it
    starts) is captured; any other thread of the process, such as the host
    application around the in-process executor, keeps writing to the real stream.
    """

    def __init__(self, fallback: Any, target: contextvars.ContextVar) -> None:
        self._fallback = fallback
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return (self._target.get() or self._fallback).write(text)

    def flush(self) -> None:
        target = self._target.get()
        if target is None:
            self._fallback.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


_STDOUT: contextvars.ContextVar = contextvars.ContextVar("py_code_mode_stdout", default=None)
_STDERR: contextvars.ContextVar = contextvars.ContextVar("py_code_mode_stderr", default=None)


def _install_routers() -> None:
    if not isinstance(sys.stdout, _Router):
        sys.stdout = _Router(sys.stdout, _STDOUT)
    if not isinstance(sys.stderr, _Router):
        sys.stderr = _Router(sys.stderr, _STDERR)


# --------------------------------------------------------------------------- the runtime


class Runtime:
    """Interpreter state of one session: globals persist across runs like notebook cells."""

    def __init__(self, transport: Any, output_limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.transport = transport
        self.output_limit = output_limit
        self.tools = Tools(transport)
        self.skills = Skills(transport, self)
        self.artifacts = Artifacts(transport)
        self.globals: dict[str, Any] = {}
        self._cell = 0
        self._loop: Any = None
        self._skill_cache: dict[tuple[str, str], Callable[..., Any]] = {}
        self.reset()
        _install_routers()

    def namespaces(self) -> dict[str, Any]:
        return {"tools": self.tools, "skills": self.skills, "artifacts": self.artifacts}

    def bindings(self) -> dict[str, Any]:
        """What agent code and skills see: the namespaces and our exception classes."""
        return {**{c.__name__: c for c in EXCEPTIONS}, **self.namespaces()}

    def reset(self) -> None:
        """Forget every variable the agent defined."""
        self.globals = {"__name__": "__main__", "__builtins__": __builtins__, **self.bindings()}

    # -- running agent code

    def execute(self, code: str) -> dict[str, Any]:
        """Run one cell and return the result shape the host expects."""
        started = time.perf_counter()
        # In-process, the host application may have replaced sys.stdout since
        # the last run (test runners do, per test): route it again.
        _install_routers()
        stdout, stderr = _Capture(self.output_limit), _Capture(self.output_limit)
        out_token, err_token = _STDOUT.set(stdout), _STDERR.set(stderr)
        value: Any = None
        has_value = False
        error = None
        try:
            value, has_value = self._execute(code)
        except BaseException as exc:  # noqa: BLE001 - agent code may raise anything, SystemExit included
            error = _describe_error(exc)
        finally:
            _STDOUT.reset(out_token)
            _STDERR.reset(err_token)
        result: dict[str, Any] = {
            "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue(),
            "error": error,
            "duration_ms": (time.perf_counter() - started) * 1000,
        }
        if has_value and value is not None:
            result["value"], result["repr"] = _export(value)
        return result

    def _execute(self, code: str) -> tuple[Any, bool]:
        self._cell += 1
        filename = f"<cell {self._cell}>"
        source = textwrap.dedent(code)
        _remember_source(filename, source)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(source, filename, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        self._eval(compile(tree, filename, "exec", flags, dont_inherit=True))
        if tail is None:
            return None, False
        return self._eval(compile(tail, filename, "eval", flags, dont_inherit=True)), True

    def _eval(self, code: Any) -> Any:
        result = eval(code, self.globals)  # noqa: S307 - running agent code is the product
        if code.co_flags & 0x80:  # CO_COROUTINE: the cell used top-level await
            result = self._event_loop().run_until_complete(result)
        return result

    def _event_loop(self) -> Any:
        import asyncio

        # One loop for the session, so tasks an agent starts survive to the next cell.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    # -- running skills

    def run_skill(self, skill: dict[str, Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        run = self._skill_function(skill)
        result = run(*args, **kwargs)
        if hasattr(result, "__await__"):
            result = _await_blocking(result)
        return result

    def _skill_function(self, skill: dict[str, Any]) -> Callable[..., Any]:
        key = (skill["name"], skill["source"])
        cached = self._skill_cache.get(key)
        if cached is not None:
            return cached
        filename = f"<skill {skill['name']}>"
        _remember_source(filename, skill["source"])
        namespace: dict[str, Any] = {
            "__name__": f"skills.{skill['name']}",
            "__builtins__": __builtins__,
            **self.bindings(),
        }
        exec(compile(skill["source"], filename, "exec", dont_inherit=True), namespace)  # noqa: S102
        run = namespace.get("run")
        if not callable(run):
            raise SkillError(f"skill `{skill['name']}` does not define `run()`")
        self._skill_cache = {k: v for k, v in self._skill_cache.items() if k[0] != skill["name"]}
        self._skill_cache[key] = run
        return run


def _await_blocking(awaitable: Any) -> Any:
    """Drive a coroutine to completion from synchronous code.

    Inside a running event loop (an async skill called from async agent code) the
    loop's thread cannot block on itself, so the coroutine gets its own loop on a
    helper thread; tool calls it makes go straight to the transport, so nothing
    waits on the blocked loop and nothing deadlocks.
    """
    import asyncio

    async def wrapper() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, wrapper())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="py-code-mode-skill")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _remember_source(filename: str, source: str) -> None:
    # Tracebacks read source lines through linecache; our cells have no file.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _export(value: Any) -> tuple[Any, str]:
    """The value as JSON when it is JSON-able (else None), and its repr for display."""
    text = repr(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None, text
    return value, text


_AGENT_FILES = ("<cell ", "<skill ")


def _describe_error(exc: BaseException) -> dict[str, Any]:
    # Keep only frames of the agent's own code (cells and skills): the runtime's
    # frames are noise to the agent.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(_AGENT_FILES)]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(exc), exc)
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = exc.msg
        if exc.lineno is not None:
            message += f" (line {exc.lineno})"
    return {"type": type(exc).__name__, "message": message, "traceback": "".join(lines)}


# --------------------------------------------------------------------------- worker entry


def _serve() -> None:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so a
    # child process the agent starts (os.system) cannot corrupt the protocol stream.
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    limit = int(os.environ.get("PY_CODE_MODE_OUTPUT_LIMIT", DEFAULT_OUTPUT_LIMIT))
    transport = PipeTransport(sys.stdin.buffer, protocol_out)  # type: ignore[arg-type]
    runtime = Runtime(transport, output_limit=limit)
    transport.send(
        {"kind": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "python": sys.version.split()[0]}
    )
    while True:
        message = transport.requests.get()
        if message is None:
            return
        if message["kind"] == "execute":
            result = runtime.execute(message["code"])
            transport.send({"kind": "result", "id": message["id"], "result": result})
        elif message["kind"] == "reset":
            runtime.reset()
            transport.send({"kind": "result", "id": message["id"], "result": {"stdout": "", "stderr": ""}})


if __name__ == "__main__":
    _serve()
