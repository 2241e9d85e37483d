"""Type stubs of the native module (Rust, PyO3). Import from `py_code_mode`."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar, final, overload

from py_code_mode.types import (
    ArtifactInfo,
    CaseReport,
    ScoredSkillInfo,
    ScoredToolInfo,
    Skill,
    SkillInfo,
    SkillVersion,
    ToolInfo,
)

_F = TypeVar("_F", bound=Callable[..., Any])

RUNTIME_SOURCE: Final[str]
"""The Python runtime every executor runs (`py_code_mode_runtime.py`)."""

class RunInterrupted(BaseException):
    """Raised inside agent code to stop a run that exceeded its timeout."""

def cli_main(argv: list[str]) -> tuple[int, str | None]:
    """Run the `py-code-mode` command line; returns the exit code and an error message."""

@final
class FileStorage:
    """A library in folders: `tools/`, `skills/` and `artifacts/` under `base_path`.

    Constructing one changes nothing on disk: a folder is made on the first
    write into it, and a `Session` over it makes the three when it starts.
    Every item is its own file, written atomically, so several processes can
    share one library.
    """

    def __init__(self, base_path: str | os.PathLike[str]) -> None: ...
    @property
    def base_path(self) -> Path: ...
    @property
    def tools_path(self) -> Path: ...
    @property
    def skills_path(self) -> Path: ...
    @property
    def artifacts_path(self) -> Path: ...

@final
class RedisStorage:
    """A library in Redis: skills, artifacts, tool definitions and caches under `prefix:`.

    Pass a redis-py client (`RedisStorage(redis=client, prefix="my-agent")`; the host
    connects to the same server with its own client) or a URL
    (`RedisStorage(url="redis://localhost:6379", prefix="my-agent")`). One prefix is one
    tenant: nothing of one prefix is visible to another. Of the client only
    `connection_pool.connection_kwargs` is read (any redis-py-compatible client
    works). Connecting fails with
    `StorageError` naming the URL (never its password).
    """

    def __init__(self, redis: Any | None = None, *, url: str | None = None, prefix: str = "py-code-mode") -> None: ...
    @property
    def prefix(self) -> str: ...

@final
class InProcessExecutor:
    """Runs agent code in this interpreter, on a thread of its own (the default).

    No isolation: agent code shares the process. A run that exceeds its timeout
    is interrupted (an exception raised in its thread) and reports
    `TimeoutError`; variables survive. Code blocked inside a C call (a long
    `time.sleep`, a socket read) stops when that call returns to Python.
    """

    def __init__(
        self, config: Any | None = None, *, timeout: float | None = None, output_limit: int = 1048576
    ) -> None:
        """`timeout`: default seconds per run; `output_limit`: bytes of stdout/stderr kept per run.
        `config`: 0.10's `InProcessConfig` (`tools_path`, `default_timeout`, `deps`,
        `deps_file`, `allow_runtime_deps`)."""
    @property
    def timeout(self) -> float | None: ...
    @property
    def output_limit(self) -> int: ...
    @property
    def config(self) -> Any | None: ...

@final
class SandboxConfig:
    """The limits and view of the sandbox executor (docs/sandbox.md)."""

    def __init__(
        self,
        *,
        memory: int | str | None = None,
        cpus: float = 1.0,
        pids_limit: int = 256,
        network: bool = False,
        read_only_paths: list[str | os.PathLike[str]] = ...,
        writable_paths: list[str | os.PathLike[str]] = ...,
        pool_size: int = 0,
    ) -> None:
        """`memory`: bytes or `"512m"` (default 1 GiB); paths are shown at the same path.
        `pool_size` (0 to 16): sandboxed workers kept started for new sessions
        of this configuration, so a session starts on a warm one."""
    @property
    def memory(self) -> int: ...
    @property
    def cpus(self) -> float: ...
    @property
    def pids_limit(self) -> int: ...
    @property
    def network(self) -> bool: ...
    @property
    def read_only_paths(self) -> list[Path]: ...
    @property
    def writable_paths(self) -> list[Path]: ...
    @property
    def pool_size(self) -> int: ...

class SandboxExecutor:
    """Runs agent code in a Python worker inside a kernel sandbox: namespaces, a
    minimal filesystem view, Landlock, seccomp and cgroup limits, no network.

    Fails at the first run where no sandbox layer works on this machine.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        python: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None: ...
    @property
    def config(self) -> SandboxConfig: ...
    @property
    def python(self) -> Path | None: ...
    @property
    def timeout(self) -> float | None: ...

def sandbox_status() -> dict[str, dict[str, object]]:
    """The sandbox layers that work here: `namespaces`, `landlock`, `seccomp`,
    `cgroups`, each `{"active": bool, "detail": str}`."""

def _sandbox_launch(args: list[str]) -> None:
    """The sandbox launcher (internal: applies the sandbox and execs the worker)."""

class SubprocessExecutor:
    """Runs agent code in a Python worker process.

    A run that exceeds its timeout kills the worker (and its children) and
    starts a new one; the result says `state_reset`. The worker gets an explicit,
    minimal environment: secrets in this process's environment stay out.
    """

    def __init__(
        self,
        python: str | os.PathLike[str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        output_limit: int = 1048576,
        pool_size: int = 0,
        config: Any | None = None,
    ) -> None:
        """`python`: the worker's interpreter (default: this one, `sys.executable`).
        `pool_size` (0 to 16): workers kept started for new sessions of this
        configuration, shared by every executor of it in the process; a new
        session takes its first worker from there (docs/starting.md).
        `config` (also accepted in `python`'s place, as 0.10 passed it): 0.10's
        `SubprocessConfig` (`python_version`, `venv_path`, `tools_path`,
        `default_timeout`, `deps`, `deps_file`, `allow_runtime_deps`, ...)."""
    @property
    def python(self) -> Path | None: ...
    @property
    def cwd(self) -> Path | None: ...
    @property
    def env(self) -> list[tuple[str, str]]: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def output_limit(self) -> int: ...
    @property
    def pool_size(self) -> int: ...
    @property
    def config(self) -> Any | None: ...

@final
class ContainerConfig:
    """Settings of the container executor (the seed's `ContainerConfig`).

    The worker runs as uid 10001 with no capabilities, a read-only root, a writable
    `/workspace` and `/tmp`, `--network none` unless `network=True`, and these limits.
    """

    def __init__(
        self,
        image: str = "py-code-mode:latest",
        timeout: float | None = None,
        *,
        memory: str | int | None = None,
        cpus: float = 1.0,
        pids_limit: int = 256,
        network: bool = False,
        mounts: list[str] | None = None,
        environment: dict[str, str] | None = None,
        engine: str | None = None,
        pool_size: int = 2,
        output_limit: int = 1048576,
    ) -> None:
        """`memory`: `"512m"` (default), `"1g"` or bytes. `mounts`: `"/host:/container[:ro]"`.
        `engine`: `"docker"` or `"podman"` (default: `docker`, else `podman`, on PATH).
        `pool_size`: started containers kept ready for new sessions, shared by every
        executor with the same settings in this process. `timeout`: seconds per run."""
    @property
    def image(self) -> str: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def memory(self) -> int:
        """The memory limit in bytes."""
    @property
    def cpus(self) -> float: ...
    @property
    def pids_limit(self) -> int: ...
    @property
    def network(self) -> bool: ...
    @property
    def mounts(self) -> list[str]: ...
    @property
    def environment(self) -> list[tuple[str, str]]: ...
    @property
    def engine(self) -> str | None: ...
    @property
    def pool_size(self) -> int: ...
    @property
    def output_limit(self) -> int: ...

@final
class ContainerExecutor:
    """Runs agent code in a Docker or Podman container, over `run -i` stdio.

    A timeout, a crash or `close()` removes the container; an out-of-memory kill is
    reported with the limit. Tools, skills, artifacts and search stay on the host.
    """

    def __init__(self, config: ContainerConfig | None = None) -> None: ...
    @property
    def config(self) -> ContainerConfig: ...

@final
class ExecutionError:
    """An exception raised by agent code, or why the executor stopped it.

    It also behaves as the string `"<type>: <message>"` (0.10's
    `ExecutionResult.error` was a `str`): `str(error)`, `error == "..."`,
    `"timeout" in error.lower()`, `len`, `+`, and every `str` method.
    """

    def __getattr__(self, name: str) -> Any:
        """`str` methods (`lower`, `startswith`, `split`, ...) of the string form."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, part: str) -> bool: ...
    def __add__(self, other: str) -> str: ...
    def __radd__(self, other: str) -> str: ...

    @property
    def type(self) -> str:
        """The exception class (`ValueError`), or `TimeoutError` / `WorkerCrashed` / `ProtocolError` / `ResourceLimitError` when the worker was stopped or replaced."""
    @property
    def message(self) -> str: ...
    @property
    def traceback(self) -> str:
        """The traceback through the agent's own code (cells and skills)."""

@final
class ExecutionResult:
    """The outcome of one `Session.run`; the same shape for every executor."""

    @property
    def value(self) -> Any:
        """The trailing expression's value when it is JSON-able, else None (see `repr`)."""
    @property
    def repr(self) -> str | None:
        """`repr()` of the trailing expression's value, whenever there is one."""
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def error(self) -> ExecutionError | None: ...
    @property
    def is_ok(self) -> bool:
        """True when the code ran without raising."""
    @property
    def duration_ms(self) -> float: ...
    @property
    def execution_time_ms(self) -> float:
        """The same as `duration_ms` (the upstream name)."""
    @property
    def state_reset(self) -> bool:
        """The worker was restarted (timeout or crash): variables are gone."""
    def to_text(self) -> str:
        """Output, value and error as a person or an agent reads them."""
    def raise_for_error(self) -> None:
        """Raise `ExecutionTimeoutError` or `CodeExecutionError` if the run failed."""

@final
class Session:
    """A Python environment with `tools`, `skills` and `artifacts` bound.

    ```python
    async with Session(storage=FileStorage(base_path=Path("./data"))) as session:
        result = await session.run("tools.list()")
    ```

    Every method is a coroutine; the work runs off the event loop. Variables
    persist across runs like notebook cells until `reset()`.

    Search (`search_tools`, `search_skills`, `tools.search`, `skills.search`) is
    hybrid: word matches fused with an embedding model's similarity. The model
    starts loading in the background when the session is created; until it is
    ready, or if it cannot be loaded, searches are lexical. Every hit says which
    in its `mode` (`"lexical"` or `"hybrid"`).
    """

    def __init__(
        self,
        storage: FileStorage | RedisStorage,
        executor: InProcessExecutor | SubprocessExecutor | ContainerExecutor | None = None,
        *,
        timeout: float | None = None,
        embedding_model: str | os.PathLike[str] | None = None,
        semantic: bool = True,
        sync_deps_on_start: bool = False,
        tools: Iterable[Callable[..., Any]] | None = None,
    ) -> None:
        """`executor` defaults to `InProcessExecutor()`; `timeout` (seconds per run)
        defaults to the executor's, else 60. `sync_deps_on_start`: install the
        library's configured packages when the session starts (docs/deps.md).

        `tools`: Python functions agent code calls as `tools.<name>(...)`, beside
        the library's tools; see `Session.tool` and docs/tools.md.

        `embedding_model`: the model of hybrid search, an alias (`"bge-small"`,
        `"bge-base"`, `"granite"`), a Hugging Face id in the local Hugging Face cache,
        or a model directory. `None`: `$PY_CODE_MODE_EMBEDDING_MODEL`, else
        `"bge-small"`. Nothing is downloaded. `semantic=False`: lexical search only,
        no model is ever loaded."""
    @classmethod
    def from_base(
        cls,
        base_path: str | os.PathLike[str],
        *,
        executor: InProcessExecutor | SubprocessExecutor | ContainerExecutor | None = None,
        timeout: float | None = None,
        embedding_model: str | os.PathLike[str] | None = None,
        semantic: bool = True,
    ) -> Session:
        """A session over `FileStorage(base_path)`; the other arguments as for `Session()`."""
    @classmethod
    def subprocess(
        cls,
        base_path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        embedding_model: str | os.PathLike[str] | None = None,
        semantic: bool = True,
    ) -> Session:
        """A session over `FileStorage(base_path)` with a `SubprocessExecutor()`."""
    @classmethod
    def inprocess(
        cls,
        base_path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        embedding_model: str | os.PathLike[str] | None = None,
        semantic: bool = True,
    ) -> Session:
        """A session over `FileStorage(base_path)` with an `InProcessExecutor()`."""
    @overload
    def tool(
        self,
        function: _F,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> _F:
        """Register a Python function as a tool agent code calls as `tools.<name>(...)`.

        ```python
        @session.tool
        def add(a: int, b: int = 1) -> int:
            \"\"\"Add two integers.\"\"\"
            return a + b

        session.tool(fetch_user, name="user", description="A user by id", timeout=5)
        ```

        The name is the function's `__name__` unless `name` is given; the
        description its docstring (up to `Args:`/`Parameters`) unless
        `description` is given; the parameters, types, defaults and their
        descriptions come from the signature and docstring. Agent code passes
        arguments by keyword; unknown or missing ones are a `TypeError` there
        before the function runs. The function runs in this interpreter
        whatever the executor: a sync one on a worker thread, an async one on
        the event loop that awaits the session. What it returns must be
        JSON-able; an exception reaches agent code as `ToolError` with its type
        and message. `timeout` (seconds, default the session's) bounds a call.
        Register before the session starts (`RuntimeError` after). Returns
        the function unchanged, so it also works as a decorator."""
    @overload
    def tool(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[_F], _F]:
        """The decorator form: `@session.tool(name=..., description=..., timeout=...)`."""
    @property
    def storage(self) -> FileStorage: ...
    @property
    def timeout(self) -> float:
        """Seconds a run may take when `run` gets no timeout."""
    @property
    def embedding_model(self) -> str | None:
        """The embedding model this session loads (argument, environment variable or
        default, as resolved when it was created); `None` with `semantic=False`."""
    async def __aenter__(self) -> Session: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    async def start(self) -> None:
        """Load tools and start the executor now, so the first run is quick."""
    async def run(self, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run agent code. Errors in the code are in the result, never raised."""
    async def reset(self) -> None:
        """Forget every variable agent code defined; the library is untouched."""
    async def close(self) -> None:
        """Stop the executor and close tool connections (idempotent)."""
    async def list_tools(self) -> list[ToolInfo]: ...
    async def search_tools(self, query: str, limit: int = 10) -> list[ScoredToolInfo]:
        """Tools ranked for `query`, best first, each with its `score` and `mode`."""
    async def list_skills(self) -> list[SkillInfo]: ...
    async def search_skills(self, query: str, limit: int = 5) -> list[ScoredSkillInfo]:
        """Skills ranked for `query`, best first, each with its `score` and `mode`."""
    async def get_skill(self, name: str, version: int | None = None) -> Skill:
        """Raises `SkillNotFoundError` if there is no such skill; `version` reads a kept version."""
    async def skill_history(self, name: str) -> list[SkillVersion]:
        """The kept versions of a skill, newest first (the current one included)."""
    async def rollback_skill(self, name: str, version: int) -> Skill:
        """Make kept version `version` current again (saved as a new version)."""
    async def test_skill(self, name: str) -> list[CaseReport]:
        """Replay the skill's recorded cases, tools answered from the recordings."""
    async def record_skill(self, name: str, case: str, /, **kwargs: Any) -> ExecutionResult:
        """Run skill `name` with `kwargs`, recording its tool calls and outcome as
        case `case` (agent code's `skills.record`). The skill's return value is the
        result's `value`; an exception it raised is the result's `error`."""
    async def add_skill(self, name: str, source: str, description: str = "") -> Skill:
        """Save a skill. Its source is parsed, never executed, on the host."""
    async def remove_skill(self, name: str) -> bool:
        """Returns whether the skill existed."""
    async def list_artifacts(self) -> list[ArtifactInfo]: ...
    async def save_artifact(
        self,
        name: str,
        data: Any,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactInfo:
        """Save bytes, str or any JSON-able value; `load_artifact` gives back the same type."""
    async def load_artifact(self, name: str) -> Any:
        """Raises `ArtifactNotFoundError` if there is no such artifact."""
    async def delete_artifact(self, name: str) -> bool:
        """Returns whether the artifact existed."""
    def supports(self, capability: str) -> bool:
        """Whether the executor provides `capability` (a `Capability` constant)."""
    def supported_capabilities(self) -> set[str]:
        """Every capability the executor provides."""
    async def list_deps(self) -> list[str]:
        """The library's configured packages (specs such as `pandas>=2`)."""
    async def add_dep(self, package: str) -> dict[str, Any]:
        """Install `package` (validated; by the host) and record it:
        `{"installed", "already_present", "failed"}` (+ `"errors"` with the
        installer's reason). Raises `InvalidDependencyError` for a bad spec."""
    async def remove_dep(self, package: str) -> dict[str, Any]:
        """Forget `package`: `{"removed", "not_found", "failed", "removed_from_config"}`."""
    async def sync_deps(self) -> dict[str, Any]:
        """Install every configured package that is missing."""
