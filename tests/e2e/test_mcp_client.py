"""Our MCP client (the host's `type: mcp` tools) against a server written with
the official SDK: names that are not Python identifiers, elicitation declined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "servers" / "hyphen_mcp_server.py"


def run(binary: str, base: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--base", str(base), "--no-semantic", "run", "--json", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def library(tmp_path: Path) -> Path:
    base = tmp_path / "lib"
    (base / "tools").mkdir(parents=True)
    (base / "tools" / "hy.yaml").write_text(
        "name: hy\ntype: mcp\ntransport: stdio\n"
        f"command: {json.dumps(sys.executable)}\nargs: [{json.dumps(str(SERVER))}]\n"
        "description: hyphenated tools\n"
    )
    return base


def test_hyphenated_tools_are_snake_case_attributes(binary: str, tmp_path: Path) -> None:
    done = run(binary, library(tmp_path), "[c['name'] for c in tools.list()[0]['callables']], tools.hy.get_sum(a=2, b=3)")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names, total = result["value"]
    assert sorted(names) == ["ask_user", "get_sum"]
    assert total == 5


def test_the_hint_for_a_server_with_several_tools_is_valid_python(binary: str, tmp_path: Path) -> None:
    done = run(binary, library(tmp_path), "tools.hy(a=1)")
    result = json.loads(done.stdout)
    message = json.dumps(result["error"])
    assert "`tools.hy.get_sum`" in message, message
    assert "get-sum" not in message


def test_elicitation_is_declined(binary: str, tmp_path: Path) -> None:
    done = run(binary, library(tmp_path), "tools.hy.ask_user()")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "decline" in json.loads(done.stdout)["value"]
