"""`deps` against the real package index: installed by the host into the
worker's venv (or a venv py-code-mode owns for a system interpreter), recorded
in the storage, and visible to `import` in the same session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from py_code_mode import FileStorage, RedisStorage, Session, SubprocessExecutor
from test_redis_storage import redis_url  # noqa: F401 - the real redis-server fixture

# Seconds a run that installs may take: a download from the index.
INSTALL_TIMEOUT = 300.0
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Path:
    """A new venv of the test interpreter's base, without `six`: every test
    installs into an environment of its own and nothing leaks between them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert subprocess.run([python, "-c", "import six"], capture_output=True).returncode != 0
    return python


async def test_add_then_import_in_the_same_session_and_list_survives_a_restart(
    fresh_venv: Path, tmp_path: Path
) -> None:
    base = tmp_path / "library"
    async with Session(storage=FileStorage(base), executor=SubprocessExecutor(fresh_venv)) as session:
        result = await session.run(
            "report = deps.add('six')\nimport six\n(report, six.__name__)", timeout=INSTALL_TIMEOUT
        )
        assert result.error is None, result.error
        assert result.value == [{"installed": ["six"], "already_present": [], "failed": []}, "six"]
        again = await session.run("deps.add('six')")
        assert again.value == {"installed": [], "already_present": ["six"], "failed": []}
    assert (base / "deps" / "requirements.txt").read_text() == "six\n"
    # A new session over the same library sees the list.
    async with Session(storage=FileStorage(base), executor=SubprocessExecutor(fresh_venv)) as session:
        assert (await session.run("deps.list()")).value == ["six"]
        removed = await session.run("deps.remove('six')")
        assert removed.value == {
            "removed": ["six"],
            "not_found": [],
            "failed": [],
            "removed_from_config": True,
        }
        assert (await session.run("deps.remove('six')")).value["not_found"] == ["six"]
        assert await session.list_deps() == []


async def test_a_failed_install_reports_pips_reason_and_keeps_the_list(fresh_venv: Path, tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "library")
    async with Session(storage=storage, executor=SubprocessExecutor(fresh_venv)) as session:
        name = "py-code-mode-no-such-package-0a1b2c"
        result = await session.run(f"deps.add({name!r})", timeout=INSTALL_TIMEOUT)
        report = result.value
        assert report["failed"] == [name] and report["installed"] == []
        assert "No matching distribution" in report["errors"][name], report
        assert await session.list_deps() == []


async def test_sync_on_start_installs_the_stored_list(fresh_venv: Path, tmp_path: Path) -> None:
    base = tmp_path / "library"
    (base / "deps").mkdir(parents=True)
    (base / "deps" / "requirements.txt").write_text("six\n")
    session = Session(storage=FileStorage(base), executor=SubprocessExecutor(fresh_venv), sync_deps_on_start=True)
    async with session:
        result = await session.run("import six\nsix.__name__")
        assert result.value == "six", result.error


async def test_the_list_survives_a_restart_in_redis(
    fresh_venv: Path,
    redis_url: str,  # noqa: F811
) -> None:
    async with Session(
        storage=RedisStorage(url=redis_url, prefix="deps-test"), executor=SubprocessExecutor(fresh_venv)
    ) as session:
        report = await session.add_dep("six")
        assert report["failed"] == [], report
        assert (await session.run("import six\nsix.__name__")).value == "six"
    async with Session(
        storage=RedisStorage(url=redis_url, prefix="deps-test"), executor=SubprocessExecutor(fresh_venv)
    ) as session:
        assert await session.list_deps() == ["six"]
    # Another prefix is another library.
    async with Session(
        storage=RedisStorage(url=redis_url, prefix="deps-other"), executor=SubprocessExecutor(fresh_venv)
    ) as session:
        assert await session.list_deps() == []


@pytest.mark.skipif(
    not SYSTEM_PYTHON.is_file() or (SYSTEM_PYTHON.parent.parent / "pyvenv.cfg").exists(),
    reason="needs a system interpreter at /usr/bin/python3",
)
async def test_a_system_interpreter_gets_an_owned_venv_never_an_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    package = "iniconfig"  # small, and not in Debian's python3
    probe = [str(SYSTEM_PYTHON), "-I", "-c", f"import {package}"]
    assert subprocess.run(probe, capture_output=True).returncode != 0
    executor = SubprocessExecutor(SYSTEM_PYTHON)
    async with Session(storage=FileStorage(tmp_path / "library"), executor=executor) as session:
        where = await session.run("import sys\n[sys.prefix, sys.base_prefix]")
        prefix, base_prefix = where.value
        assert prefix != base_prefix and prefix.startswith(str(tmp_path / "cache" / "py-code-mode" / "venvs"))
        # What the system had is still there (system site-packages are seen).
        assert (await session.run("import json\njson.__name__")).value == "json"
        result = await session.run(f"deps.add({package!r})\nimport {package}\n{package}.__name__", timeout=INSTALL_TIMEOUT)
        assert result.value == package, result.error
        assert session.supports("deps_uninstall")
        removed = await session.run(f"deps.remove({package!r})")
        assert removed.value["removed"] == [package] and removed.value["failed"] == []
    # The system interpreter itself never got it.
    assert subprocess.run(probe, capture_output=True).returncode != 0
    assert not os.path.exists(Path(prefix) / "lib" / "python3.11" / "site-packages" / package)


def test_mcp_add_dep_then_import_in_run_code(fresh_venv: Path, tmp_path: Path) -> None:
    """0.10's MCP config (`--storage`, `--tools`) starts and serves the deps tools."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

    binary = os.environ.get("PY_CODE_MODE_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).parents[2] / "target")) / "debug" / "py-code-mode"
    )
    if not Path(binary).is_file():
        pytest.fail(f"`{binary}` does not exist; build it with `cargo build -p py-code-mode-cli --bins`")
    # 0.10's configurations name the `py-code-mode-mcp` command, built beside it.
    binary = str(Path(binary).with_name("py-code-mode-mcp"))
    (tmp_path / "tools").mkdir()

    async def scenario(*flags: str) -> tuple[set[str], list[str]]:
        env = {**get_default_environment(), "PY_CODE_MODE_PYTHON": str(fresh_venv), "HF_HUB_OFFLINE": "1"}
        args = ["--storage", "./data", "--tools", "./tools", "--no-semantic", *flags]
        params = StdioServerParameters(command=binary, args=args, cwd=tmp_path, env=env)
        out: list[str] = []
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                names = {t.name for t in (await client.list_tools()).tools}
                if "add_dep" in names:
                    added = await client.call_tool("add_dep", {"package": "six"})
                    out.append(json.loads(added.content[0].text)["installed"][0])
                    ran = await client.call_tool("run_code", {"code": "import six\nsix.__name__"})
                    out.append(ran.content[0].text)
                    listed = await client.call_tool("list_deps", {})
                    out.extend(json.loads(listed.content[0].text))
                else:
                    ran = await client.call_tool("run_code", {"code": "deps.add('six')"})
                    out.append(ran.content[0].text)
        return names, out

    names, out = asyncio.run(scenario())
    assert {"list_deps", "add_dep", "remove_dep", "run_code"} <= names
    assert out == ["six", "'six'", "six"]
    names, out = asyncio.run(scenario("--no-runtime-deps"))
    assert not {"list_deps", "add_dep", "remove_dep"} & names
    assert "runtime dependency installation is disabled" in out[0]
