"""The sandbox executor from Python: the layers, the view, the brokered tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from py_code_mode import FileStorage, Session
from py_code_mode.backends.sandbox import SandboxConfig, SandboxExecutor, sandbox_status


def test_the_layers_are_reported() -> None:
    status = sandbox_status()
    assert set(status) == {"namespaces", "landlock", "seccomp", "cgroups"}
    assert status["namespaces"]["active"] or status["landlock"]["active"], status


def test_config_checks_its_limits() -> None:
    assert SandboxConfig(memory="512m").memory == 512 << 20
    with pytest.raises(ValueError, match="memory"):
        SandboxConfig(memory="1k")
    with pytest.raises(ValueError, match="cpus"):
        SandboxConfig(cpus=0)


async def test_agent_code_calls_tools_but_sees_neither_the_library_nor_the_network(library: Path) -> None:
    executor = SandboxExecutor(SandboxConfig(memory="512m"))
    async with Session(storage=FileStorage(base_path=library), executor=executor) as session:
        result = await session.run(
            f"""
import os, socket
try:
    os.listdir({str(library)!r}); library = True
except OSError:
    library = False
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1); network = True
except OSError:
    network = False
[library, network, tools.echo(text="hi").strip(), 1 + 1]
"""
        )
        assert result.error is None, result
        assert result.value == [False, False, "hi", 2]
