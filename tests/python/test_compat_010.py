"""Code written against the Python original's 0.10 public API runs unchanged.

Written from 0.10's documented API (its README, its docs, and
../shared/reference/upstream-notes.md), each entry point used the way those
show it, against both executors, asserting the values a 0.10 user relies on.
Where 0.10 had a defect we keep our behaviour; docs/migrating.md lists those.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from test_redis_storage import redis_url  # noqa: F401 - the real redis-server fixture

ECHO_TOOL = """\
name: shout
type: cli
args: "{word}"
command: echo
description: Print a word loudly
parameters:
  word:
    description: the word
    required: true
"""


def make(kind: str, **config: Any) -> Any:
    """An executor built the 0.10 way: a config object, then the executor."""
    from py_code_mode.execution import (
        InProcessConfig,
        InProcessExecutor,
        SubprocessConfig,
        SubprocessExecutor,
    )

    if kind == "inprocess":
        return InProcessExecutor(config=InProcessConfig(**config))
    # 0.10's own form passes the config positionally.
    return SubprocessExecutor(SubprocessConfig(**config))


def test_module_paths_are_aliases_of_the_package_classes() -> None:
    import py_code_mode
    from py_code_mode.errors import (  # noqa: F401 - 0.10's names must import
        ArtifactNotFoundError,
        CodeModeError,
        ConfigurationError,
        DependencyError,
        DepsError,
        SkillNotFoundError,
        StorageError,
        StorageReadError,
        StorageWriteError,
        ToolCallError,
        ToolNotFoundError,
        ToolTimeoutError,
    )
    from py_code_mode.execution import (
        Capability,
        InProcessConfig,
        InProcessExecutor,
        SubprocessConfig,
        SubprocessExecutor,
    )
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage, RedisStorage

    # Thin aliases: the very same classes, not copies.
    assert Session is py_code_mode.Session
    assert FileStorage is py_code_mode.FileStorage and RedisStorage is py_code_mode.RedisStorage
    assert InProcessExecutor is py_code_mode.InProcessExecutor
    assert SubprocessExecutor is py_code_mode.SubprocessExecutor
    assert InProcessConfig is py_code_mode.InProcessConfig
    assert SubprocessConfig is py_code_mode.SubprocessConfig
    assert Capability.TIMEOUT == "timeout" and Capability.RESET == "reset"
    assert {"network_isolation", "memory_limit", "filesystem_isolation"} <= Capability.all()
    assert issubclass(StorageReadError, CodeModeError) and ToolCallError is py_code_mode.ToolError


def test_container_names_resolve_lazily() -> None:
    import py_code_mode.execution as execution

    # Importing `execution` does not import the container backend.
    assert "ContainerExecutor" in execution.__all__
    if importlib.util.find_spec("py_code_mode.backends.container") is None:
        with pytest.raises(ImportError):
            execution.ContainerExecutor  # noqa: B018 - the lazy attribute
    else:
        from py_code_mode.backends.container import ContainerConfig, ContainerExecutor

        assert execution.ContainerExecutor is ContainerExecutor
        assert execution.ContainerConfig is ContainerConfig


def test_config_defaults_and_validation_are_0_10s() -> None:
    from py_code_mode.execution import InProcessConfig, SubprocessConfig

    assert InProcessConfig().allow_runtime_deps is True
    assert InProcessConfig().tools_path is None and InProcessConfig().deps is None
    config = SubprocessConfig()
    assert (config.default_timeout, config.startup_timeout, config.allow_runtime_deps, config.cache_venv) == (
        60.0,
        30.0,
        True,
        True,
    )
    with pytest.raises(ValueError, match="python_version"):
        SubprocessConfig(python_version="three")
    with pytest.raises(ValueError, match="default_timeout"):
        SubprocessConfig(default_timeout=0)
    with pytest.raises(TypeError):
        SubprocessConfig(no_such_field=1)  # type: ignore[call-arg]


def test_file_storage_creates_folders_on_first_write_not_when_constructed(tmp_path: Path) -> None:
    from py_code_mode.storage import FileStorage

    base = tmp_path / "data"
    FileStorage(base_path=base)
    assert not base.exists()
    # 0.10 code that makes the folders itself must not fail with FileExistsError.
    (base / "tools").mkdir(parents=True)
    FileStorage(base)
    assert sorted(p.name for p in base.iterdir()) == ["tools"]


async def test_result_error_behaves_as_a_string_and_keeps_its_fields(executor_kind: str, tmp_path: Path) -> None:
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    async with Session(storage=FileStorage(tmp_path), executor=make(executor_kind, default_timeout=1.0)) as session:
        ok = await session.run("x = 40\nx + 2")
        assert (ok.value, ok.error, ok.is_ok) == (42, None, True)
        assert ok.execution_time_ms >= 0

        failed = await session.run("1 / 0")
        error = failed.error
        assert not failed.is_ok and error  # truthy, as a non-empty str was
        assert str(error) == "ZeroDivisionError: division by zero"
        assert error == "ZeroDivisionError: division by zero"
        assert "zerodivision" in error.lower() and error.startswith("ZeroDivisionError")
        assert f"{error}" == str(error) and "error: " + error == "error: " + str(error)
        assert (error.type, error.message) == ("ZeroDivisionError", "division by zero")
        assert "1 / 0" in error.traceback

        slow = await session.run("import time\nwhile True: time.sleep(0.01)")
        assert "timeout" in slow.error.lower(), slow.error
        # The session goes on after a timeout.
        assert (await session.run("2 + 2")).value == 4


async def test_supports_answers_truthfully_per_executor(executor_kind: str, tmp_path: Path) -> None:
    from py_code_mode.execution import Capability
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    session = Session(storage=FileStorage(tmp_path), executor=make(executor_kind))
    caps = session.supported_capabilities()
    assert Capability.TIMEOUT in caps and Capability.RESET in caps
    assert session.supports(Capability.TIMEOUT) and session.supports("reset")
    # Neither executor isolates memory, network or files: never claimed.
    for missing in (
        Capability.NETWORK_ISOLATION,
        Capability.NETWORK_FILTERING,
        Capability.FILESYSTEM_ISOLATION,
        Capability.MEMORY_LIMIT,
        Capability.CPU_LIMIT,
    ):
        assert not session.supports(missing), missing
    # 0.10 has no sandbox form: `make` builds its subprocess executor for every
    # kind but in-process, and that runs agent code in another process.
    assert session.supports(Capability.PROCESS_ISOLATION) == (executor_kind != "inprocess")
    assert not session.supports("no-such-capability")
    await session.close()


async def test_agent_code_sees_0_10_shapes_and_operation_named_errors(
    executor_kind: str, library: Path
) -> None:
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    async with Session(storage=FileStorage(library), executor=make(executor_kind)) as session:
        created = await session.run(
            "skills.create(name='add', source='def run(a: int, b: int = 1) -> int:\\n    return a + b',"
            " description='Add two numbers')\nskills.add(a=2, b=3)"
        )
        assert created.value == 5, created.error
        listed = await session.run("[s for s in skills.list() if s['name'] == 'add']")
        [entry] = listed.value
        assert entry["params"] == {"a": "int", "b": "int"}
        assert entry["description"] == "Add two numbers" and "source" not in entry
        source = await session.run("skills.get('add').source")
        assert "return a + b" in source.value

        missing = await session.run("artifacts.load('nope')")
        assert missing.error.type == "ArtifactNotFoundError"
        assert missing.error.message.startswith("artifacts.load: no artifact named `nope`")
        saved = await session.run("artifacts.save('n.json', {'k': [1]}, description='d')\nartifacts.load('n.json')")
        assert saved.value == {"k": [1]}
        no_skill = await session.run("skills.get('nope')")
        assert no_skill.error.message.startswith("skills.get: ")


async def test_facade_methods_of_0_10(executor_kind: str, library: Path) -> None:
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    async with Session(storage=FileStorage(library), executor=make(executor_kind)) as session:
        assert {t["name"] for t in await session.list_tools()} >= {"echo", "word_count"}
        assert (await session.search_tools("count words"))[0]["name"] == "word_count"
        await session.add_skill("triple", "def run(x: int) -> int:\n    return 3 * x", "Triple it")
        assert (await session.get_skill("triple"))["description"] == "Triple it"
        assert "triple" in {s["name"] for s in await session.list_skills()}
        assert (await session.search_skills("triple"))[0]["name"] == "triple"
        assert await session.remove_skill("triple") is True
        await session.save_artifact("a.txt", "hello", description="greeting")
        assert await session.load_artifact("a.txt") == "hello"
        assert "a.txt" in {a["name"] for a in await session.list_artifacts()}
        assert await session.delete_artifact("a.txt") is True
        assert await session.list_deps() == []
        await session.run("y = 1")
        await session.reset()
        assert not (await session.run("y")).is_ok


async def test_classmethod_constructors(tmp_path: Path) -> None:
    from py_code_mode.session import Session

    for make_session in (Session.from_base, Session.inprocess, Session.subprocess):
        async with make_session(tmp_path / make_session.__name__) as session:
            assert (await session.run("6 * 7")).value == 42


async def test_executor_owned_tools_path_and_default_timeout(executor_kind: str, tmp_path: Path) -> None:
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    tools = tmp_path / "my-tools"
    tools.mkdir()
    (tools / "shout.yaml").write_text(ECHO_TOOL)
    executor = make(executor_kind, tools_path=tools, default_timeout=7.0)
    async with Session(storage=FileStorage(tmp_path / "data"), executor=executor) as session:
        assert session.timeout == 7.0
        result = await session.run("tools.shout(word='hey')")
        assert result.value.strip() == "hey", result.error
    # The tools folder was only read.
    assert sorted(p.name for p in tools.iterdir()) == ["shout.yaml"]


async def test_runtime_deps_lockdown_is_enforced_by_the_host(executor_kind: str, tmp_path: Path) -> None:
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    executor = make(executor_kind, allow_runtime_deps=False)
    async with Session(storage=FileStorage(tmp_path), executor=executor) as session:
        refused = await session.run("deps.add('six')")
        assert refused.error.type == "RuntimeError"
        assert "deps.add: runtime dependency installation is disabled" in refused.error.message
        removed = await session.run("deps.remove('six')")
        assert removed.error.type == "RuntimeError"
        # Reading is allowed, and nothing was recorded.
        assert (await session.run("deps.list()")).value == []
        assert await session.list_deps() == []


async def test_bad_and_option_like_specs_are_refused_before_any_install(executor_kind: str, tmp_path: Path) -> None:
    from py_code_mode.errors import InvalidDependencyError
    from py_code_mode.session import Session
    from py_code_mode.storage import FileStorage

    async with Session(storage=FileStorage(tmp_path), executor=make(executor_kind)) as session:
        for spec in (
            "--index-url=http://127.0.0.1:9/simple",
            "-e .",
            "six --extra-index-url http://127.0.0.1:9",
            "pkg @ https://127.0.0.1:9/pkg.whl",
            "/tmp/evil",
            "six; sys_platform == 'linux'",
            "six$(touch /tmp/pwned)",
            "",
        ):
            result = await session.run(f"deps.add({spec!r})")
            assert result.error is not None and result.error.type == "ValueError", (spec, result.error)
            assert "is not an allowed package spec" in result.error.message
            with pytest.raises(InvalidDependencyError):
                await session.add_dep(spec)
        assert await session.list_deps() == []


async def test_redis_storage_reads_only_connection_kwargs(redis_url: str) -> None:  # noqa: F811
    from py_code_mode.session import Session
    from py_code_mode.storage import RedisStorage

    host, port = redis_url.removeprefix("redis://").split(":")

    class Pool:
        connection_kwargs = {"host": host, "port": int(port), "db": 0}

    class CompatibleClient:
        """Not redis-py: only what 0.10 read."""

        connection_pool = Pool()

    storage = RedisStorage(redis=CompatibleClient(), prefix="compat-010")
    async with Session(storage=storage, executor=make("subprocess")) as session:
        assert (await session.run("artifacts.save('k', 1)\nartifacts.load('k')")).value == 1
    with pytest.raises(TypeError, match="connection_kwargs"):
        RedisStorage(redis=object(), prefix="x")


def test_python_version_selects_the_interpreter() -> None:
    from py_code_mode.execution import SubprocessConfig, SubprocessExecutor

    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert SubprocessExecutor(SubprocessConfig(python_version=current)).python == Path(sys.executable)
    assert SubprocessExecutor(SubprocessConfig(python_version="3.99")).python == Path("python3.99")


def test_configured_deps_are_validated_when_the_executor_is_made(tmp_path: Path) -> None:
    from py_code_mode.execution import InProcessConfig, InProcessExecutor, SubprocessConfig, SubprocessExecutor

    with pytest.raises(ValueError, match="not an allowed package spec"):
        InProcessExecutor(config=InProcessConfig(deps=("--index-url=http://127.0.0.1:9",)))
    deps_file = tmp_path / "requirements.txt"
    deps_file.write_text("# packages\nsix\n-e ./local\n")
    with pytest.raises(ValueError, match="`-e ./local` is not an allowed package spec"):
        SubprocessExecutor(SubprocessConfig(deps_file=deps_file))
    with pytest.raises(ValueError, match="deps_file"):
        SubprocessExecutor(SubprocessConfig(deps_file=tmp_path / "missing.txt"))
