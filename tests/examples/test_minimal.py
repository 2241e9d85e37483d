"""examples/minimal/agent.py against a scripted chat server on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from chat_server import ChatServer, answer, tool_call
from py_code_mode import Session

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minimal"
RUN_TIMEOUT = 120  # seconds: a cold worker and interpreter on a busy machine


def run_agent(server: ChatServer, base: Path, task: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_MODEL": "scripted",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "agent.py"), task, "--base", str(base)],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_the_agent_runs_code_uses_a_skill_and_answers(tmp_path: Path) -> None:
    base = tmp_path / "library"
    for part in ("tools", "skills"):
        shutil.copytree(EXAMPLE / part, base / part)
    turns = [
        tool_call("greeting = skills.greet(name='Ada')\nartifacts.save('greeting.txt', greeting)\ngreeting"),
        tool_call("1/0", call_id="call_2"),
        answer("Done: Hello, Ada!"),
    ]
    with ChatServer(turns) as server:
        done = run_agent(server, base, "Greet Ada and keep the greeting")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Done: Hello, Ada!\n"
    # The model saw the value of its code, then the traceback of its mistake.
    first, second = server.tool_results()
    assert first == "'Hello, Ada!'"
    assert second.endswith("ZeroDivisionError: division by zero"), second
    # It offered exactly one tool, and the artifact is in the library it was given.
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == ["run_code"]
    assert asyncio.run(load(base, "greeting.txt")) == "Hello, Ada!"


async def load(base: Path, name: str) -> object:
    async with Session.from_base(base, semantic=False) as session:
        return await session.load_artifact(name)


def test_without_a_model_name_it_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_MODEL"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "agent.py"), "hi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 1
    assert "set OPENAI_MODEL" in done.stderr
