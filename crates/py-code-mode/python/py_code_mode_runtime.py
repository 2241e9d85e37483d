"""py-code-mode runtime: runs agent code with `tools`, `skills` and `artifacts` bound.

One file serves every executor. The subprocess worker runs it as a script
(`python -I -c <this file>`) and speaks newline-delimited JSON with the host over
a private copy of its stdout; the in-process executor of the Python bindings
imports it and drives `Runtime` with a direct transport. Every side effect
outside the interpreter (tool calls, storage, search) is a call to the host; this
file owns only interpreter state. The protocol is documented in docs/protocol.md.
"""

from __future__ import annotations

import contextvars
import io
import json
import os
import select
import sys
import time

# Only what the worker needs to say `ready` is imported here: `ast`,
# `textwrap`, `traceback`, `linecache`, `base64`, `threading` and
# `concurrent.futures` are imported where they are used (the worker imports
# them right after `ready`, before its first run; see `_prewarm`), and
# `typing` only for the type checker. That is most of a cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any, Callable

PROTOCOL_VERSION = 2

# How often a long run's new output goes to the host before its result.
OUTPUT_EVERY = 0.5
# Captured stdout/stderr per run are capped so a print loop cannot exhaust host memory.
DEFAULT_OUTPUT_LIMIT = 1024 * 1024

# A trailing value whose JSON is bigger than this comes back as its repr only:
# the host reads every message with a line cap (64 MiB), and a value the agent
# cannot read whole helps nobody.
MAX_VALUE_BYTES = 8 * 1024 * 1024

# The longest repr (and error message or traceback) sent to the host, in
# characters: enough for any display, small next to the line cap.
MAX_REPR_CHARS = 256 * 1024

# Nesting the host can parse: its JSON parser stops at 128 levels, and the
# message itself adds a few.
MAX_JSON_DEPTH = 100

# The longest message the runtime sends, in bytes: the host reads at most
# 64 MiB (plus room for output) per line and replaces a worker that sends more.
MAX_MESSAGE_BYTES = 60 * 1024 * 1024

# The biggest artifact payload agent code may save, in bytes (before base64):
# one protocol line carries it, and the host caps a line at 64 MiB.
MAX_ARTIFACT_BYTES = 32 * 1024 * 1024
# The integers the host reads exactly (i64 and u64): JSON has no limit, but
# a larger one would reach the host as a float, or not at all, so it stays
# on this side (a run's value keeps only its repr; a call is refused).
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1

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
_ERRORS: dict[str, type[Exception]] = {
    "TypeError": TypeError,
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    **{c.__name__: c for c in EXCEPTIONS},
}


def _start_thread(target: Callable[[], None]) -> None:
    """A daemon thread, started without waiting for it to run (as
    `threading.Thread.start` does): a wait that costs milliseconds of worker
    start-up on a busy machine."""
    import _thread

    _thread.start_new_thread(target, ())


def _host_error(error: dict[str, Any]) -> Exception:
    cls = _ERRORS.get(error.get("type", ""), CodeModeError)
    return cls(error.get("message", "host call failed"))


# --------------------------------------------------------------------------- transports


class PipeTransport:
    """Newline-delimited JSON over a pair of private pipe fds (the subprocess worker).

    Whoever waits reads. Between runs, and while agent code on the main thread
    waits for a call of its own, the main thread reads the input fd itself: the
    next `execute`, or the answer it waits for, wakes it directly, with no
    hand-off between threads (one thread wake-up fewer a run). Only while agent
    code runs and a call made elsewhere (an event loop's `acall`, another
    thread) is outstanding does a reader thread read instead, resolving each
    answer's future, so several calls can be outstanding at once
    (`asyncio.gather` over tools). One thread reads at a time: the role passes
    under `_lock`.

    The reader thread also watches for the end of input the whole time: when
    the host goes away (or dies), the worker kills what it started and exits,
    even in the middle of a run that makes no call. Nothing outlives the host.
    """

    def __init__(self, rfd: int, wfd: int) -> None:
        import _thread

        self._rfd = rfd
        self._wfd = wfd
        self._write_lock = _thread.allocate_lock()
        # Input read but not yet taken as messages, and how far it holds no
        # newline; only the thread holding the reader role touches them.
        self._buffer = bytearray()
        self._scanned = 0
        self._owner = _thread.get_ident()
        self._lock = _thread.allocate_lock()
        self._pending: dict[int, Future] = {}
        self._next_id = 0
        # Who reads: "main", "thread" or None (the main thread runs agent code
        # and no call is outstanding: input waits in the pipe).
        self._reader: str | None = None
        # Requests the reader thread read during a run, for the main thread.
        self._requests: list[dict[str, Any]] = []
        # The reader thread is told to start or stop reading through a pipe of
        # its own; it acknowledges a stop by releasing `_stopped`.
        self._thread_reads = False
        self._stop_asked = False
        self._stopped = _thread.allocate_lock()
        self._stopped.acquire()
        wake_r, wake_w = os.pipe()
        self._wake_r, self._wake_w = _private(wake_r), _private(wake_w)
        _start_thread(self._thread_loop)

    def send(self, message: dict[str, Any]) -> None:
        # Lone surrogates become `?`: the host reads only valid UTF-8.
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace") + b"\n"
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(
                f"this message to the host is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES} (`MAX_MESSAGE_BYTES`)"
            )
        view = memoryview(data)
        with self._write_lock:
            while view:
                view = view[os.write(self._wfd, view) :]

    # -- reading

    def _fill(self) -> None:
        """Reads what the host has sent; at the end of input the worker exits."""
        try:
            data = os.read(self._rfd, max(1 << 16, len(self._buffer)))
        except OSError:
            data = b""  # agent code closed the fd: the protocol is gone
        if not data:
            _exit_with_descendants()
        self._buffer += data

    def _buffered_message(self) -> dict[str, Any] | None:
        buffer = self._buffer
        end = buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(buffer)
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            _exit_with_descendants()  # not the host speaking: nothing to answer
        return message

    def _dispatch(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Resolves the future a response answers; any other message is a
        request for the main thread, returned."""
        if message.get("kind") != "response":
            return message
        with self._lock:
            future = self._pending.pop(message.get("id"), None)
        if future is not None:
            future.set_result(message)
        return None

    def _read_until(self, done: Callable[[], bool]) -> None:
        """The main thread, holding the role, reads until `done()`; requests
        it reads on the way are kept for `next_request`."""
        while not done():
            message = self._buffered_message()
            if message is None:
                self._fill()
                continue
            request = self._dispatch(message)
            if request is not None:
                self._requests.append(request)

    def next_request(self) -> dict[str, Any]:
        """The main thread, between runs: the next `execute` or `reset`."""
        with self._lock:
            if self._reader == "thread":
                self._thread_reads = False
                self._stop_asked = True
                os.write(self._wake_w, b"s")
                wait = True
            else:
                wait = False
            self._reader = "main"
        if wait:
            self._stopped.acquire()
        try:
            self._read_until(lambda: bool(self._requests))
            return self._requests.pop(0)
        finally:
            self._leave_role()

    def _leave_role(self) -> None:
        with self._lock:
            self._reader = None
            if self._pending:
                self._engage()

    def _engage(self) -> None:
        """With `_lock` held: the reader thread reads until told to stop."""
        self._reader = "thread"
        self._thread_reads = True
        os.write(self._wake_w, b"g")

    def _thread_loop(self) -> None:
        import select

        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        # Not reading: only the end of input is reported (POLLHUP always is;
        # POLLRDHUP is a socket's half-close), never data, which is the main
        # thread's to read.
        idle = getattr(select, "POLLRDHUP", 0)
        poller.register(self._rfd, idle)
        reading = False
        try:
            while True:
                for fd, events in poller.poll():
                    if fd == self._wake_r:
                        if events & ~select.POLLIN:
                            raise OSError("the reader's wake pipe broke")
                        os.read(self._wake_r, 64)
                        with self._lock:
                            wanted, ack = self._thread_reads, self._stop_asked
                            self._stop_asked = False
                        if wanted != reading:
                            reading = wanted
                            poller.modify(self._rfd, select.POLLIN | idle if reading else idle)
                        if ack:
                            self._stopped.release()
                    elif reading:
                        # Data, or the end of input (`_fill` exits on it).
                        self._fill()
                        while (message := self._buffered_message()) is not None:
                            request = self._dispatch(message)
                            if request is not None:
                                with self._lock:
                                    self._requests.append(request)
                    elif events & ~select.POLLIN:
                        raise OSError("end of input")
                    # else: data noted before a stop in this same poll; the
                    # main thread reads it.
        except BaseException:  # noqa: BLE001 - a closed or broken fd is the host gone too
            pass
        # The host closed the protocol (or died): take everything we started
        # with us, so a host killed with -9 leaves nothing behind.
        _exit_with_descendants()

    # -- calls

    def start_call(self, method: str, params: dict[str, Any]) -> Future:
        return self._start_call(method, params, main_waits=False)[0]

    def _start_call(self, method: str, params: dict[str, Any], *, main_waits: bool) -> tuple[Future, str | None]:
        """Sends a call; the future its response resolves, and how the main
        thread, when it waits for it (`main_waits`), gets the answer: "took"
        (it took the reader role to read it), "held" (it was reading already:
        the call comes from inside that read, a finalizer or a signal handler;
        it reads on) or None (the reader thread reads it)."""
        from concurrent.futures import Future

        future: Future = Future()
        role = None
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
            self._pending[call_id] = future
            if self._reader is None:
                if main_waits:
                    self._reader, role = "main", "took"
                else:
                    self._engage()
            elif main_waits and self._reader == "main":
                role = "held"
        try:
            # `kind` and `id` first: the host reads them even from a message it
            # cannot parse, and answers it with an error.
            self.send({"kind": "call", "id": call_id, "method": method, "params": params})
        except BaseException:
            with self._lock:
                self._pending.pop(call_id, None)
            if role == "took":
                self._leave_role()
            raise
        return future, role

    def call(self, method: str, params: dict[str, Any]) -> Any:
        import _thread

        if _thread.get_ident() != self._owner:
            return _unwrap(self.start_call(method, params).result())
        # Agent code on the main thread waits: it reads the answer itself.
        future, role = self._start_call(method, params, main_waits=True)
        if role is not None:
            try:
                self._read_until(future.done)
            finally:
                if role == "took":
                    self._leave_role()
        return _unwrap(future.result())

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
    notices = response.get("notices")
    if notices:
        # What tools said during the call (an MCP server's progress and log
        # messages) goes where a program's diagnostics go: the run's stderr.
        sys.stderr.write("".join(f"{line}\n" for line in notices if isinstance(line, str)))
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


def _namespaces(transport: Any, run_skill: Callable[..., Any]) -> tuple[Any, Any, Any]:
    """The `tools`, `skills` and `artifacts` objects agent code holds.

    They reach the transport only through this closure: no attribute of theirs
    (`tools._transport`, `skills._runtime`) hands agent code the protocol. The
    classes use `__slots__`, so nothing else can hang off them either.
    """
    call = transport.call
    acall = transport.acall

    class ToolCallable:
        """`tools.nmap(...)`, `tools.web.fetch(...)`, and `await tools.nmap.acall(...)`."""

        __slots__ = ("_name",)

        def __init__(self, name: str) -> None:
            self._name = name

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return call("tools.call", {"name": self._name, "args": _kwargs(self._name, args, kwargs)})

        async def acall(self, *args: Any, **kwargs: Any) -> Any:
            """Awaitable form, so several tool calls can run concurrently."""
            return await acall("tools.call", {"name": self._name, "args": _kwargs(self._name, args, kwargs)})

        def list(self) -> list[Record]:
            """The tool's callables: CLI recipes, an MCP server's tools, HTTP endpoints."""
            for tool in call("tools.list", {}):
                if tool["name"] == self._name:
                    return [Record(c) for c in tool["callables"] if c["name"] != self._name]
            raise ToolNotFoundError(f"no tool named `{self._name}`")

        def __getattr__(self, name: str) -> "ToolCallable":
            if name.startswith("_"):
                raise AttributeError(name)
            return ToolCallable(f"{self._name}.{name}")

        def __repr__(self) -> str:
            return f"<tool {self._name}>"

    class Tools:
        """The `tools` namespace: call, list and search the host's tools."""

        __slots__ = ()

        def __getattr__(self, name: str) -> ToolCallable:
            if name.startswith("_"):
                raise AttributeError(name)
            return ToolCallable(name)

        def call(self, name: str, args: dict[str, Any] | None = None, **kwargs: Any) -> Any:
            """Call a tool by name: `tools.call("nmap", {"target": "10.0.0.1"})`."""
            return call("tools.call", {"name": name, "args": _kwargs(name, (), {**(args or {}), **kwargs})})

        def list(self) -> list[Record]:
            """Every tool with its description and callables."""
            return [Record(t) for t in call("tools.list", {})]

        def search(self, query: str, limit: int = 10) -> list[Record]:
            """Tools ranked by relevance to `query`."""
            return [Record(t) for t in call("tools.search", {"query": query, "limit": limit})]

        def __dir__(self) -> list[str]:
            return ["call", "list", "search", *(t["name"] for t in self.list())]

        def __repr__(self) -> str:
            return "<tools: call tools.<name>(**kwargs); tools.list(); tools.search(query)>"

    class Skills:
        """The `skills` namespace: find, inspect, invoke, create and delete skills.

        Skill code runs here, in the executor, never on the host.
        """

        __slots__ = ()

        def __getattr__(self, name: str) -> Callable[..., Any]:
            if name.startswith("_"):
                raise AttributeError(name)

            def invoke(*args: Any, **kwargs: Any) -> Any:
                return self.invoke(name, *args, **kwargs)

            invoke.__name__ = name
            return invoke

        def invoke(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
            """Run skill `name` with the given arguments and return its result."""
            return run_skill(self.get(name), args, kwargs)

        def list(self) -> list[Record]:
            """Every skill: name, description, parameters, params (no source)."""
            return [_skill_listing(s) for s in call("skills.list", {})]

        def search(self, query: str, limit: int = 5) -> list[Record]:
            """Skills ranked by relevance to `query`."""
            return [_skill_listing(s) for s in call("skills.search", {"query": query, "limit": limit})]

        def get(self, name: str, version: int | None = None) -> Record:
            """One skill with `.name`, `.description`, `.parameters`, `.source` and its
            provenance (`.version`, `.session`, `.run`, `.hash`); `version=N` reads a kept version."""
            params: dict[str, Any] = {"name": name}
            if version is not None:
                params["version"] = version
            return Record(call("skills.get", params))

        def history(self, name: str) -> list[Record]:
            """The kept versions of skill `name`, newest first (the current one included):
            `version`, `created_at`, `session`, `run`, `description`, `hash`, `source`."""
            return [Record(v) for v in call("skills.history", {"name": name})]

        def rollback(self, name: str, version: int) -> Record:
            """Make kept version `version` the current one again (as a new version)."""
            return Record(call("skills.rollback", {"name": name, "version": version}))

        def record(self, name: str, case: str, /, **kwargs: Any) -> Any:
            """Run skill `name` with `kwargs`, keep its tool calls and result as test
            case `case`, and return its result (`skills.test(name)` replays the cases)."""
            if not _json_fits(kwargs, MAX_VALUE_BYTES):
                raise TypeError(f"skills.record(): the arguments of case `{case}` must be JSON-able")
            call("skills.record_begin", {"name": name, "case": case, "kwargs": kwargs})
            try:
                value = run_skill(self.get(name), (), kwargs)
            except Exception as exc:
                call("skills.record_end", {"outcome": {"error": _case_error(exc)}})
                raise
            call("skills.record_end", {"outcome": {"result": _case_value(value)}})
            return value

        def _replay(self, skill: dict[str, Any], cases: list) -> list[Record]:
            reports = []
            for case in cases:
                kwargs = call("skills.replay_begin", {"name": skill["name"], "case": case["case"]})
                try:
                    outcome: dict[str, Any] = {"result": _case_value(run_skill(skill, (), kwargs))}
                except Exception as exc:
                    outcome = {"error": _case_error(exc)}
                reports.append(Record(call("skills.replay_end", {"outcome": outcome})))
            return reports

        def test(self, name: str) -> list[Record]:
            """Replay every recorded case of skill `name` with tools answered from the
            recording: a list of `{case, ok, diff}` (`diff` empty when ok)."""
            cases = call("skills.cases", {"name": name})
            return self._replay(self.get(name), cases) if cases else []

        def create(
            self,
            name: str,
            code: str | None = None,
            description: str = "",
            *,
            source: str | None = None,
            require_passing: bool = False,
        ) -> Record:
            """Save a new skill (or a new version of one). `code=` and `source=` are synonyms.

            When the skill has recorded cases, they are replayed against the new source
            first: the result's `tests` lists them, and with `require_passing=True` a
            failing case refuses the update (nothing is saved)."""
            if (code is None) == (source is None):
                raise TypeError("skills.create() takes exactly one of `code=` or `source=`")
            import textwrap

            text = textwrap.dedent(code if code is not None else source or "")
            cases = call("skills.cases", {"name": name})
            reports = self._replay({"name": name, "source": text}, cases) if cases else []
            failing = [r for r in reports if not r["ok"]]
            if failing and require_passing:
                details = "\n".join(f"case `{r['case']}`:\n{r['diff']}" for r in failing)
                raise SkillError(f"skill `{name}` was not updated: recorded cases fail\n{details}")
            record = Record(call("skills.create", {"name": name, "source": text, "description": description}))
            if cases:
                record["tests"] = reports
            return record

        def delete(self, name: str) -> bool:
            """Delete skill `name`; returns whether it existed."""
            return bool(call("skills.delete", {"name": name}))

        def __repr__(self) -> str:
            return (
                "<skills: skills.<name>(**kwargs); list(); search(query); get(name, version=None); "
                "create(name, code, description); history(name); rollback(name, version); "
                "record(name, case, **kwargs); test(name)>"
            )

    class Artifacts:
        """The `artifacts` namespace: named data that outlives the session."""

        __slots__ = ()

        def save(
            self, name: str, data: Any, description: str = "", metadata: dict[str, Any] | None = None
        ) -> Record:
            """Save `data` (JSON-able value, str or bytes) under `name`."""
            params = {
                "name": name,
                "data": _encode_data(name, data),
                "description": description,
                "metadata": metadata or {},
            }
            if not _json_fits(params["metadata"], MAX_VALUE_BYTES):
                raise ValueError(
                    f"the metadata of artifact `{name}` is not JSON-able, deeper than {MAX_JSON_DEPTH} levels "
                    f"or over {MAX_VALUE_BYTES} bytes"
                )
            return Record(call("artifacts.save", params))

        def load(self, name: str) -> Any:
            """The data saved under `name`, with the type it was saved with."""
            return _decode_data(call("artifacts.load", {"name": name}))

        def list(self) -> list[Record]:
            """Every artifact: name, description, type, size, metadata, timestamps."""
            return [Record(a) for a in call("artifacts.list", {})]

        def exists(self, name: str) -> bool:
            return bool(call("artifacts.exists", {"name": name}))

        def delete(self, name: str) -> bool:
            """Delete artifact `name`; returns whether it existed."""
            return bool(call("artifacts.delete", {"name": name}))

        def __repr__(self) -> str:
            return "<artifacts: save(name, data, description); load(name); list(); exists(name); delete(name)>"

    return Tools(), Skills(), Artifacts()


def _case_value(value: Any) -> Any:
    """A skill's result as a recorded case keeps it: JSON, or its repr when JSON cannot hold it."""
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return {"$repr": _bounded(_safe_repr(value))}
    if len(text) > MAX_VALUE_BYTES:
        return {"$repr": _bounded(_safe_repr(value))}
    return json.loads(text)


def _case_error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": _bounded(_safe_str(exc), what="message")}


def _skill_listing(skill: dict[str, Any]) -> Record:
    """A skill as listings show it, with 0.10's `params` (name -> description,
    or type when undocumented) beside the full `parameters`."""
    record = Record(skill)
    record["params"] = {
        p.get("name", ""): p.get("description") or p.get("type", "") for p in skill.get("parameters", [])
    }
    return record


def _deps_namespace(transport: Any) -> Any:
    """The `deps` object agent code holds: packages, installed by the host.

    Like the other namespaces it reaches the transport only through this
    closure. After an install the import system forgets what it cached about
    the folders, so the next `import` finds the package.
    """
    call = transport.call

    def _specs(what: str, packages: tuple) -> list[str]:
        specs: list[str] = []
        for p in packages:
            if isinstance(p, (list, tuple)):
                specs.extend(p)
            else:
                specs.append(p)
        if not specs or not all(isinstance(s, str) for s in specs):
            raise TypeError(f"deps.{what}() takes package specs as strings, e.g. deps.{what}(\"requests\")")
        return specs

    def _refresh(report: Any) -> None:
        if report.get("installed"):
            import importlib

            importlib.invalidate_caches()

    class Deps:
        """The `deps` namespace: the packages this library needs."""

        __slots__ = ()

        def list(self) -> list[str]:
            """The configured packages (specs such as `pandas>=2`)."""
            return list(call("deps.list", {}))

        def add(self, *packages: Any) -> Record:
            """Install packages and remember them: `{installed, already_present, failed}`."""
            report = Record(call("deps.add", {"specs": _specs("add", packages)}))
            _refresh(report)
            return report

        def remove(self, *packages: Any) -> Record:
            """Forget packages: `{removed, not_found, failed, removed_from_config}`."""
            return Record(call("deps.remove", {"names": _specs("remove", packages)}))

        def sync(self) -> Record:
            """Install every configured package that is missing."""
            report = Record(call("deps.sync", {}))
            _refresh(report)
            return report

        def __repr__(self) -> str:
            return "<deps: list(); add(spec); remove(name); sync()>"

    return Deps()


def _kwargs(name: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    if args:
        raise TypeError(f"tool `{name}` takes keyword arguments only, e.g. tools.{name}(target=...)")
    # Refused here with the reason, not sent to arrive changed (a big
    # integer as a float) or as a message the host cannot read.
    problem = _json_problem(kwargs, MAX_MESSAGE_BYTES)
    if problem is not None and problem is not TOO_BIG:
        raise type(problem)(f"tool `{name}`: the arguments hold {problem}")
    return kwargs


def _too_big(name: str, size: int) -> ValueError:
    return ValueError(
        f"artifact `{name}` is {size} bytes; the limit is {MAX_ARTIFACT_BYTES} (`MAX_ARTIFACT_BYTES`)\n"
        "hint: save it in parts under several names"
    )


def _encode_data(name: str, data: Any) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > MAX_ARTIFACT_BYTES:
            raise _too_big(name, len(raw))
        import base64

        return {"type": "bytes", "base64": base64.b64encode(raw).decode()}
    if isinstance(data, str):
        # A str holds at most 4 bytes of UTF-8 per character: check cheaply first.
        if len(data) * 4 > MAX_ARTIFACT_BYTES and len(data.encode("utf-8", "surrogatepass")) > MAX_ARTIFACT_BYTES:
            raise _too_big(name, len(data.encode("utf-8", "surrogatepass")))
        return {"type": "text", "value": data}
    problem = _json_problem(data, MAX_ARTIFACT_BYTES)
    if problem is TOO_BIG:
        raise _too_big(name, len(json.dumps(data, allow_nan=False)))
    if problem is not None:
        raise type(problem)(f"artifact `{name}`: data must be JSON, str or bytes; this holds {problem}")
    return {"type": "json", "value": data}


def _decode_data(data: dict[str, Any]) -> Any:
    if data["type"] == "bytes":
        import base64

        return base64.b64decode(data["base64"])
    return data["value"]


def _json_fits(value: Any, budget: int) -> bool:
    """Whether `value` is JSON the host can read (see `_json_problem`)."""
    return _json_problem(value, budget) is None


#: `_json_problem`'s answer for a value over its budget.
TOO_BIG = ValueError("over the size limit")


def _json_problem(value: Any, budget: int) -> TypeError | ValueError | None:
    """Why `value` is not JSON the host can read, or None when it is: JSON
    types only (else a `TypeError` to raise), integers in `MIN_INT..MAX_INT`
    and at most `MAX_JSON_DEPTH` deep (else a `ValueError`), and about
    `budget` bytes at most (else `TOO_BIG`).

    Walks the value before `json.dumps` so a 1 GB string or a 300-deep list
    costs a size check, not a 1 GB encoding or a message the host cannot parse.
    """
    left = [budget]

    def walk(v: Any, depth: int) -> TypeError | ValueError | None:
        if depth > MAX_JSON_DEPTH:
            return ValueError(f"a value nested deeper than {MAX_JSON_DEPTH} levels (`MAX_JSON_DEPTH`)")
        if v is None or isinstance(v, bool):
            left[0] -= 5
        elif isinstance(v, int):
            if not MIN_INT <= v <= MAX_INT:
                return ValueError("an integer beyond 64 bits, which the host cannot read exactly (pass it as a str)")
            left[0] -= 24
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                return ValueError("NaN or an infinity, which JSON cannot carry")
            left[0] -= 24
        elif isinstance(v, str):
            left[0] -= len(v) + 2
        elif isinstance(v, (list, tuple)):
            left[0] -= 2
            for item in v:
                problem = TOO_BIG if left[0] < 0 else walk(item, depth + 1)
                if problem is not None:
                    return problem
        elif isinstance(v, dict):
            left[0] -= 2
            for key, item in v.items():
                if key is not None and not isinstance(key, (str, bool, float)):
                    if not isinstance(key, int):
                        return TypeError(f"a key of type `{type(key).__name__}`, which JSON cannot carry")
                    if not MIN_INT <= key <= MAX_INT:
                        return ValueError("an integer key beyond 64 bits")
                left[0] -= len(str(key)) + 4
                problem = TOO_BIG if left[0] < 0 else walk(item, depth + 1)
                if problem is not None:
                    return problem
        else:
            return TypeError(f"a `{type(v).__name__}`, which is not JSON")
        return TOO_BIG if left[0] < 0 else None

    return walk(value, 0)


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
        written = len(text)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate, escaped as the worker's own fd streams write it.
            data = text.encode("utf-8", "backslashreplace")
            text = data.decode("utf-8")
        size = len(data)
        room = self._limit - self._size
        if size <= room:
            self._parts.append(text)
            self._size += size
        else:
            kept = data[: max(room, 0)].decode("utf-8", "ignore")
            self._parts.append(kept)
            self._size += len(kept.encode())
            self._dropped += size - len(kept.encode())
        return written

    def since(self, index: int) -> tuple[str, int]:
        """The text written after the first `index` writes, and the writes so far."""
        return "".join(self._parts[index:]), len(self._parts)

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

    def __init__(
        self,
        transport: Any,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        *,
        fds: "_FdCapture | None" = None,
        module: bool = False,
    ) -> None:
        self._transport = transport
        self.output_limit = output_limit
        # The worker captures at the fd level (children's output included); the
        # in-process executor routes sys.stdout per run instead.
        self._fds = fds
        # The worker's agent globals are the `__main__` module's own dict, so
        # `import __main__` shows agent code its own variables, never ours.
        self._module = module
        self.tools, self.skills, self.artifacts = _namespaces(transport, self.run_skill)
        self.deps = _deps_namespace(transport)
        self.globals: dict[str, Any] = {}
        self._cell = 0
        self._loop: Any = None
        self._skill_cache: dict[tuple[str, str], Callable[..., Any]] = {}
        self.reset()
        _install_routers()

    def namespaces(self) -> dict[str, Any]:
        return {"tools": self.tools, "skills": self.skills, "artifacts": self.artifacts, "deps": self.deps}

    def bindings(self) -> dict[str, Any]:
        """What agent code and skills see: the namespaces and our exception classes."""
        return {**{c.__name__: c for c in EXCEPTIONS}, **self.namespaces()}

    def reset(self) -> None:
        """Forget every variable the agent defined.

        In-process, also put back what agent code patched in builtins and in this
        runtime (the worker is replaced by a fresh process instead).
        """
        if not self._module:
            _PRISTINE.restore()
            for name in list(vars(self)):
                if callable(getattr(Runtime, name, None)):
                    del self.__dict__[name]  # a method shadowed on the instance
        if self._module:
            import types

            main = types.ModuleType("__main__")
            main.__dict__.update({"__builtins__": __builtins__, **self.bindings()})
            sys.modules["__main__"] = main
            self.globals = main.__dict__
        else:
            self.globals = {"__name__": "__main__", "__builtins__": __builtins__, **self.bindings()}

    # -- running agent code

    def execute(self, code: str) -> dict[str, Any]:
        """Run one cell and return the result shape the host expects.

        Never raises: whatever agent code did (a raising `__repr__`, a 1 GB
        value, a 300-deep list), the result is bounded JSON the host can read.
        """
        started = time.perf_counter()
        stdout, stderr = _Capture(self.output_limit), _Capture(self.output_limit)
        if self._fds is not None:
            self._fds.begin(stdout, stderr)
            out_token = err_token = None
        else:
            # In-process, the host application may have replaced sys.stdout since
            # the last run (test runners do, per test): route it again.
            _install_routers()
            out_token, err_token = _STDOUT.set(stdout), _STDERR.set(stderr)
        value: Any = None
        has_value = False
        error = None
        try:
            value, has_value = self._execute(code)
        except BaseException as exc:  # noqa: BLE001 - agent code may raise anything, SystemExit included
            error = _describe_error(exc)
        finally:
            if self._fds is not None:
                self._fds.end()
            else:
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
        import ast
        import textwrap

        self._cell += 1
        filename = f"<cell {self._cell}>"
        source = textwrap.dedent(code)
        _remember_source(filename, source)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(source, filename, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        if tree.body or tail is None:
            # A cell that is one expression has nothing else to run: one
            # compile fewer (~10 us of a 50 us `1+1`).
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

    import threading

    thread = threading.Thread(target=target, name="py-code-mode-skill")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _remember_source(filename: str, source: str) -> None:
    import linecache

    # Tracebacks read source lines through linecache; our cells have no file.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _export(value: Any) -> tuple[Any, str]:
    """The value as JSON when it is JSON the host can read (else None), and a
    bounded repr for display. Never raises."""
    kind = type(value)
    if (kind is int and MIN_INT <= value <= MAX_INT) or kind is bool or (kind is str and len(value) <= MAX_REPR_CHARS):
        # The common small scalar: no walk, no second encoding. (Exact types:
        # a subclass may override __repr__.)
        return value, _bounded(repr(value))
    text = _safe_repr(value)
    try:
        # The walk bounds the work; the real encoding (escapes included) decides.
        if not _json_fits(value, MAX_VALUE_BYTES):
            return None, text
        if len(json.dumps(value, allow_nan=False, ensure_ascii=False)) > MAX_VALUE_BYTES:
            return None, text
    except BaseException:  # noqa: BLE001 - a hostile __eq__ or __iter__ must not kill the worker
        return None, text
    return value, text


def _bounded(text: str, limit: int = MAX_REPR_CHARS, what: str = "repr") -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{what} truncated: {len(text) - limit} more characters]"


def _type_name(value: Any) -> str:
    try:
        return str(type(value).__qualname__)[:200]
    except BaseException:  # noqa: BLE001
        return "object"


def _safe_repr(value: Any) -> str:
    """repr(value), cut to `MAX_REPR_CHARS`; a placeholder with a note when
    repr raises (the variables and the worker survive)."""
    try:
        if isinstance(value, (str, bytes, bytearray)) and len(value) > MAX_REPR_CHARS:
            # A 1 GB string: repr only the part shown, never a 1 GB copy.
            head = repr(value[:MAX_REPR_CHARS])
            return f"{head}... [repr truncated: {type(value).__name__} of length {len(value)}]"
        return _bounded(repr(value))
    except BaseException as exc:  # noqa: BLE001 - agent code's __repr__ may raise anything
        return f"<{_type_name(value)} object; repr() raised {_type_name(exc)}>"


def _safe_str(exc: BaseException) -> str:
    try:
        return _bounded(str(exc), what="message")
    except BaseException:  # noqa: BLE001 - an exception's __str__ is agent code too
        return f"<{_type_name(exc)}; str() raised>"


_AGENT_FILES = ("<cell ", "<skill ")


def _describe_error(exc: BaseException) -> dict[str, Any]:
    # Keep only frames of the agent's own code (cells and skills): the runtime's
    # frames are noise to the agent.
    import traceback

    kind = _type_name(exc)
    message = _safe_str(exc)
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(_AGENT_FILES)]
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
        lines += traceback.format_exception_only(type(exc), exc)
        text = "".join(lines)
        if isinstance(exc, SyntaxError):
            message = str(exc.msg)
            if exc.lineno is not None:
                message += f" (line {exc.lineno})"
    except BaseException:  # noqa: BLE001 - formatting runs agent code (__str__)
        text = f"{kind}: {message}\n"
    return {
        "type": kind,
        "message": _bounded(message, what="message"),
        "traceback": _bounded(text, what="traceback"),
    }


# --------------------------------------------------------------------------- worker entry


# fds the worker keeps for itself start here, far from the 0-9 agent code and
# shells use, and are close-on-exec: no child inherits the protocol.
PRIVATE_FD_FLOOR = 200


def _private(fd: int) -> int:
    """`fd` moved to a private, close-on-exec number at or above `PRIVATE_FD_FLOOR`."""
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, PRIVATE_FD_FLOOR)
    os.close(fd)
    return moved


class _FdCapture:
    """fds 0, 1 and 2 of agent code and of every process it starts.

    fd 0 is `/dev/null` (input() sees end of file, never the host's messages);
    fds 1 and 2 are pipes a drain thread reads into the current run's capture,
    so `os.system("echo hi")` is captured like `print`, under the same cap, and
    a child never blocks on a full pipe. `begin` puts the fds back each run, so
    agent code that closed or redirected them breaks only its own run.
    """

    def __init__(self) -> None:
        import codecs

        self._null = _private(os.open(os.devnull, os.O_RDWR))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._readers = [_private(out_r), _private(err_r)]
        self._writers = [_private(out_w), _private(err_w)]
        for fd in self._readers:
            os.set_blocking(fd, False)
        self._decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in self._readers]
        self._targets: list[Any] = [None, None]
        self._streams: tuple[Any, Any, Any] | None = None
        # Output of a long run goes to the host as it comes (an `output`
        # message at most every OUTPUT_EVERY seconds), so a client sees it
        # before the result: (transport, run id), and how much was sent.
        self._stream: tuple[Any, int] | None = None
        self._sent = [0, 0]
        self._since = 0.0
        import _thread

        self._lock = _thread.allocate_lock()
        _start_thread(self._drain_loop)

    def restore(self) -> None:
        os.dup2(self._null, 0)
        os.dup2(self._writers[0], 1)
        os.dup2(self._writers[1], 2)
        # The stream objects are made once and replaced only when agent code
        # closed or swapped them: rebuilding them every run costs 30 us.
        streams = self._streams
        if streams is None or any(s.closed or getattr(s, "_fallback", s).closed for s in streams):
            self._streams = (
                io.TextIOWrapper(io.FileIO(0, "rb", closefd=False), encoding="utf-8"),
                _Router(self._text_stream(1), _STDOUT),
                _Router(self._text_stream(2), _STDERR),
            )
        sys.stdin, sys.stdout, sys.stderr = self._streams

    @staticmethod
    def _text_stream(fd: int) -> io.TextIOWrapper:
        return io.TextIOWrapper(
            io.FileIO(fd, "wb", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
        )

    def stream_to(self, transport: Any, run_id: int) -> None:
        """Send the next run's output to the host as it comes, as run `run_id`."""
        with self._lock:
            self._stream = (transport, run_id)
            self._since = time.monotonic()

    def begin(self, stdout: "_Capture", stderr: "_Capture") -> None:
        # The fds were put back after the last run (`restore`), off the path
        # the host waits on.
        with self._lock:
            self._targets = [stdout, stderr]
            self._sent = [0, 0]

    def end(self) -> None:
        streams = self._streams or ()
        for stream in (sys.stdout, sys.stderr):
            if stream in streams:
                continue  # ours write through to the fd: nothing is buffered
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - agent code may have closed or replaced it
                pass
        with self._lock:
            # One poll finds what is left to read; most runs print nothing.
            ready, _, _ = select.select(self._readers, [], [], 0)
            for fd in ready:
                self._read_available(self._readers.index(fd))
            self._targets = [None, None]
            self._stream = None

    def _drain_loop(self) -> None:
        due = None
        while True:
            ready, _, _ = select.select(self._readers, [], [], due)
            with self._lock:
                for fd in ready:
                    self._read_available(self._readers.index(fd))
                due = self._stream_out()

    def _stream_out(self) -> float | None:
        """Sends the run's new output if OUTPUT_EVERY passed since the last
        send; returns how long until output not sent yet is due (None: none)."""
        if self._stream is None or None in self._targets:
            return None
        if not any(len(t._parts) > sent for t, sent in zip(self._targets, self._sent)):
            return None
        wait = self._since + OUTPUT_EVERY - time.monotonic()
        if wait > 0:
            return wait
        (stdout, out_at), (stderr, err_at) = (t.since(sent) for t, sent in zip(self._targets, self._sent))
        self._sent = [out_at, err_at]
        self._since = time.monotonic()
        transport, run_id = self._stream
        try:
            transport.send({"kind": "output", "id": run_id, "stdout": stdout, "stderr": stderr})
        except BaseException:  # noqa: BLE001 - best effort: the result carries all the output anyway
            pass
        return None

    def _read_available(self, index: int) -> None:
        while True:
            try:
                data = os.read(self._readers[index], 1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            # Between runs (a background child still printing) output has no
            # run to go to: it is read and dropped, so the child never blocks.
            text = self._decoders[index].decode(data)
            target = self._targets[index]
            if target is not None and text:
                target.write(text)


def _descendants() -> list[int]:
    """Every live descendant of this process, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            parent = int(stat[stat.rindex(b")") + 1 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    frontier = [os.getpid()]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.append(child)
                frontier.append(child)
    return found


def _exit_with_descendants(*_: Any) -> None:
    """Kill everything this worker started (its group, and descendants that
    left it; the worker is their subreaper), then exit."""
    import signal

    for _round in range(3):
        found = _descendants()
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not found:
            break
    try:
        # Only a group of our own: started any other way, the group is the
        # caller's, and it is not ours to kill.
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(0)


def _prewarm() -> None:
    """Imports what the first run needs, after `ready`: the host starts a
    worker ahead of need (a pool, a spare for `reset`) and these are done long
    before its first run; a worker started on demand pays them as before."""
    import ast  # noqa: F401
    import linecache  # noqa: F401
    import textwrap  # noqa: F401
    import traceback  # noqa: F401


def _serve() -> None:
    import signal

    # The protocol moves to private fds at once, before anything else can read
    # fd 0 or write fd 1 (a container executor will only have those two to
    # carry it).
    transport = PipeTransport(_private(os.dup(0)), _private(os.dup(1)))
    fds = _FdCapture()
    fds.restore()
    # The host's parent-death signal: the worker takes its descendants with it.
    signal.signal(signal.SIGTERM, _exit_with_descendants)
    limit = int(os.environ.get("PY_CODE_MODE_OUTPUT_LIMIT", DEFAULT_OUTPUT_LIMIT))
    runtime = Runtime(transport, output_limit=limit, fds=fds, module=True)
    transport.send(
        {"kind": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "python": sys.version.split()[0]}
    )
    _prewarm()
    while True:
        message = transport.next_request()
        if message["kind"] == "execute":
            fds.stream_to(transport, message["id"])
            result = runtime.execute(message["code"])
        elif message["kind"] == "reset":
            runtime.reset()
            result = {"stdout": "", "stderr": ""}
        else:
            continue
        try:
            transport.send({"kind": "result", "id": message["id"], "result": result})
        except BaseException as exc:  # noqa: BLE001 - the host must get a result whatever happened
            failure = {"type": "CodeModeError", "message": f"the result could not be sent: {_safe_str(exc)}"}
            transport.send({"kind": "result", "id": message["id"], "result": {"error": failure}})
        # Undo what agent code did to fds 0, 1, 2 and sys.std* for the next run.
        fds.restore()


class _Pristine:
    """Builtins and this module's own globals and classes as they were at load.

    The in-process executor shares the application's interpreter, so `reset`
    cannot start a new one; it puts back every builtin, module global and class
    attribute of the runtime that agent code replaced, added or deleted. What
    agent code did to other modules (`json.dumps = ...`) stays: only a separate
    process (the subprocess executor) gives a truly clean interpreter.
    """

    def take(self) -> None:
        """Remember the current state; called once, when the module has loaded."""
        import builtins

        self._builtins = builtins.__dict__
        self._builtins_saved = dict(self._builtins)
        self._module = globals()
        self._module_saved = dict(self._module)
        self._classes = {
            cls: dict(vars(cls))
            for cls in self._module_saved.values()
            if isinstance(cls, type) and cls.__module__ in (__name__, "builtins")
        }

    def restore(self) -> None:
        # Builtins the application added after we loaded (`_` in a REPL) are
        # not ours to remove; replaced and deleted ones are put back.
        for name, value in self._builtins_saved.items():
            if self._builtins.get(name, _MISSING) is not value:
                self._builtins[name] = value
        _restore_dict(self._module, self._module_saved)
        for cls, saved in self._classes.items():
            for name in [n for n in vars(cls) if n not in saved]:
                delattr(cls, name)
            for name, value in saved.items():
                if name not in ("__dict__", "__weakref__") and vars(cls).get(name, _MISSING) is not value:
                    setattr(cls, name, value)


_MISSING = object()


def _restore_dict(current: dict[str, Any], saved: dict[str, Any]) -> None:
    for name in [n for n in current if n not in saved]:
        del current[name]
    for name, value in saved.items():
        if current.get(name, _MISSING) is not value:
            current[name] = value


_PRISTINE = _Pristine()
_PRISTINE.take()


if __name__ == "__main__":
    _serve()

