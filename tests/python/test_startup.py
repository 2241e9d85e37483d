"""What a new process pays before its first result: the in-process runtime
loads from the package's installed bytecode when the package's copy of it is
the embedded source, and `import py_code_mode` leaves the 0.10 configurations
for first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import py_code_mode

PACKAGE = Path(py_code_mode.__file__).resolve().parent

FIRST_RUN = """
import asyncio, json, sys
from py_code_mode import FileStorage, InProcessExecutor, Session

imported = set(sys.modules)

async def main():
    async with Session(storage=FileStorage(base_path=sys.argv[1]), executor=InProcessExecutor(), semantic=False) as session:
        result = await session.run("6 * 7")
    runtime = sys.modules["py_code_mode._runtime"]
    print(json.dumps({
        "value": result.value,
        "file": getattr(runtime, "__file__", None),
        "cached": getattr(runtime, "__cached__", None),
        "planted": hasattr(runtime, "PLANTED"),
        "imports": sorted(set(sys.modules) - imported),
    }))

asyncio.run(main())
"""


def first_run(tmp_path: Path, path: list[str] | None = None) -> dict:
    env = None if path is None else {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(tmp_path / "base")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_the_in_process_runtime_loads_from_the_installed_package(tmp_path: Path) -> None:
    seen = first_run(tmp_path)
    assert seen["value"] == 42
    assert Path(seen["file"]).resolve() == PACKAGE / "_runtime.py"
    # The installer's bytecode, beside it, is what the import machinery loads.
    cached = Path(seen["cached"])
    assert cached.parent == Path(seen["file"]).parent / "__pycache__" and cached.is_file(), cached
    assert not seen["planted"]
    # Loading it takes no module of its own: `pathlib` and `importlib.util`
    # cost a new process ~8 ms on a slow machine.
    assert "pathlib" not in seen["imports"] and "importlib.util" not in seen["imports"], seen["imports"]


def test_a_package_copy_that_differs_from_the_embedded_runtime_is_not_run(tmp_path: Path) -> None:
    # A package whose _runtime.py is not this build's (a stale or edited
    # copy beside a newer native module): the embedded source runs instead.
    copy = tmp_path / "site"
    shutil.copytree(PACKAGE, copy / "py_code_mode", ignore=shutil.ignore_patterns("__pycache__"))
    runtime = copy / "py_code_mode" / "_runtime.py"
    runtime.unlink()  # never written through a link
    runtime.write_text((PACKAGE / "_runtime.py").read_text() + "\nPLANTED = True\n")
    seen = first_run(tmp_path, path=[str(copy)])
    assert seen["value"] == 42
    assert not seen["planted"]
    assert seen["file"] == "py_code_mode_runtime.py"


def test_the_010_configurations_load_on_first_use() -> None:
    code = (
        "import sys, py_code_mode\n"
        "before = 'py_code_mode.execution._config' in sys.modules\n"
        "from py_code_mode import InProcessConfig, SubprocessConfig\n"
        "from py_code_mode.execution import SubprocessConfig as Again\n"
        "print(before, SubprocessConfig is Again, InProcessConfig(default_timeout=5).default_timeout)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["False", "True", "5"]
