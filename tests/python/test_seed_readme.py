"""Every Python example of the seed README that needs no external service,
run as written (tools from examples/base stand in for nmap and fetch), with
each executor."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import FileStorage, Session
from py_code_mode.backends.in_process import InProcessExecutor


async def test_api_reference_session_example_creates_the_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "File-based storage (creates tools/, skills/, artifacts/ subdirs)"; the
    # working directory is restored after the test.
    monkeypatch.chdir(tmp_path)
    storage = FileStorage(base_path=Path("./data"))

    async with Session(storage=storage) as session:
        result = await session.run("tools.list()")

    assert result.is_ok, result.error
    assert result.value == []
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["artifacts", "skills", "tools"]


async def test_quick_start_with_the_example_library(library: Path) -> None:
    storage = FileStorage(base_path=library)

    async with Session(storage=storage) as session:
        result = await session.run(
            """
            # Search for relevant tools
            found = tools.search("print text")

            # Call tools
            echoed = tools.echo(text="python async patterns")

            # Use existing skills
            skills.greet(name=echoed.strip())
            """
        )

    assert result.is_ok, result.error
    assert result.value == "Hello, python async patterns!"


async def test_in_process_executor_example(library: Path) -> None:
    storage = FileStorage(base_path=library)

    async with Session(storage=storage, executor=InProcessExecutor()) as session:
        result = await session.run("2 + 2")

    assert (result.value, result.repr, result.error) == (4, "4", None)


async def test_tool_operations(session: Session) -> None:
    result = await session.run(
        """
        direct = tools.echo(text="10.0.0.1")
        generic = tools.call("echo", {"text": "10.0.0.1"})
        found = [t["name"] for t in tools.search("print text back")]
        listed = sorted(t.name for t in tools.list())
        (direct, generic, found[0], listed)
        """
    )

    assert result.is_ok, result.error
    assert result.value == ["10.0.0.1\n", "10.0.0.1\n", "echo", ["echo", "list_files", "word_count"]]


async def test_skill_operations(session: Session) -> None:
    result = await session.run(
        """
        invoked = skills.greet(name="example.com")
        by_name = skills.invoke("greet", name="example.com")
        found = [s["name"] for s in skills.search("greet someone", limit=5)]
        listed = sorted(s["name"] for s in skills.list())
        skill = skills.get("greet")
        print(skill.source)
        print(skill.parameters)
        skills.create(
            name="quick_scan",
            code='def run(target: str): return tools.echo(text=target)',
            description="Fast port scan"
        )
        (invoked, by_name, found[0], listed, skills.quick_scan(target="10.0.0.1"))
        """
    )

    assert result.is_ok, result.error
    assert result.value == [
        "Hello, example.com!",
        "Hello, example.com!",
        "greet",
        ["count_words", "greet"],
        "10.0.0.1\n",
    ]
    assert "def run(name: str = \"world\") -> str:" in result.stdout
    assert "'name': 'name'" in result.stdout
    created = await session.get_skill("quick_scan")
    assert created["description"] == "Fast port scan"


async def test_artifacts_example(session: Session) -> None:
    result = await session.run(
        """
        data = {"hosts": ["10.0.0.1"], "open": [22, 80]}
        artifacts.save("results.json", data, description="Scan results")
        data = artifacts.load("results.json")
        (data, [(a["name"], a["description"]) for a in artifacts.list()])
        """
    )

    assert result.is_ok, result.error
    assert result.value == [
        {"hosts": ["10.0.0.1"], "open": [22, 80]},
        [["results.json", "Scan results"]],
    ]


async def test_composition_example(session: Session, make_executor: Callable[[], Any]) -> None:
    result = await session.run(
        """
        targets = ["a", "b"]
        for target in targets:
            scan = tools.echo(text=f"{target} open")
            if "open" in scan:
                content = tools.echo(text=f"http://{target}")
                artifacts.save(f"{target}.md", content)
        sorted(a["name"] for a in artifacts.list())
        """
    )

    assert result.is_ok, result.error
    assert result.value == ["a.md", "b.md"]
    assert await session.load_artifact("a.md") == "http://a\n"


async def test_embedding_model_example_searches(
    library: Path, make_executor: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Embedding model configured via environment": the real test model, so the
    # search is hybrid (a missing model would silently rank lexically).
    model = os.environ.get("PY_CODE_MODE_TEST_MODEL_DIR")
    if not model:
        pytest.fail("PY_CODE_MODE_TEST_MODEL_DIR is not set (scripts/test installs the test model)")
    monkeypatch.setenv("PY_CODE_MODE_EMBEDDING_MODEL", model)
    storage = FileStorage(base_path=library)

    async with Session(storage=storage, executor=make_executor()) as session:
        assert session.embedding_model == model
        # A paraphrase sharing no word with the tool: only the model finds it.
        # The model loads in the background; until then search is lexical.
        deadline = asyncio.get_running_loop().time() + 10.0
        while True:
            result = await session.run('[(t["name"], t["mode"]) for t in tools.search("enumerate folder contents")]')
            assert result.is_ok, result.error
            if result.value and result.value[0][1] == "hybrid":
                break
            assert asyncio.get_running_loop().time() < deadline, f"never hybrid: {result.value}"
            await asyncio.sleep(0.05)

    assert result.value[0] == ["list_files", "hybrid"]


NMAP_STAND_IN = """\
# A local CLI tool under the seed example's name: no network scan in tests.
name: nmap
type: cli
command: echo
args: "scanned {target}"
description: Stand-in for nmap that prints its target
parameters:
  target:
    description: host to scan
    required: true
"""


async def test_container_executor_example(library: Path) -> None:
    (library / "tools" / "nmap.yaml").write_text(NMAP_STAND_IN)
    storage = FileStorage(base_path=library)
    # As written in the seed README (the image is the one scripts/test builds).
    from py_code_mode.backends.container import ContainerExecutor, ContainerConfig
    config = ContainerConfig(image="py-code-mode:latest", timeout=60.0)
    async with Session(storage=storage, executor=ContainerExecutor(config)) as session:
        result = await session.run('tools.nmap(target="scanme.nmap.org")')
    assert result.error is None, result
    assert result.value.strip() == "scanned scanme.nmap.org"
