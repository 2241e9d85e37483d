"""examples/azure-container-apps: its image, built offline from the example's
Dockerfile, serves code mode over streamable HTTP with the library in Redis,
as the example's README says: a bearer token off loopback, an unprivileged
user, and a skill created through one replica found through the other.

The image's base is the offline one of `scripts/make-base-image` (no registry
here) and the binary the one under test (`PREBUILT`); the Dockerfile, its user,
entry point and environment are the example's own. The Bicep file needs an
Azure subscription and is not run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2
import pytest

from test_mcp_http import ACCEPT, INITIALIZE, connect, run
from test_mcp_load_balancer import free_port, started

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "py-code-mode-azure-example:test"
BASE = os.environ.get("PY_CODE_MODE_TEST_BASE_IMAGE", "py-code-mode-base:host")


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def image(binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if "DOCKER_HOST" not in os.environ:
        pytest.skip("needs the private Docker daemon: eval \"$(scripts/dockerd)\" (scripts/test does)")
    made = subprocess.run([str(ROOT / "scripts/make-base-image"), BASE], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    context = tmp_path_factory.mktemp("azure-context")
    shutil.copy2(binary, context / "py-code-mode")
    python = os.path.realpath("/usr/bin/python3")  # where the base image has it
    built = docker(
        "build", "-q", "-f", str(ROOT / "examples/azure-container-apps/Dockerfile"),
        "--build-arg", f"BUILD_IMAGE={BASE}", "--build-arg", f"RUN_IMAGE={BASE}",
        "--build-arg", "PREBUILT=py-code-mode", "--build-arg", f"PYTHON={python}",
        "-t", IMAGE, str(context),
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert built.returncode == 0, built.stderr
    yield IMAGE
    # The legacy builder leaves the build stage behind untagged (over 1 GB a
    # run, a new one each time the binary changes): the daemon keeps none.
    docker("image", "prune", "-f")


def test_the_image_runs_as_an_unprivileged_user_with_the_servers_entry_point(image: str) -> None:
    config = docker("image", "inspect", "-f", "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}", image)
    assert config.stdout.split(" ", 2) == ["agent", '["py-code-mode"]', '["serve","--http","0.0.0.0:8080"]\n']
    version = docker("run", "--rm", "--network", "none", image, "--version")
    assert version.returncode == 0 and version.stdout.startswith("py-code-mode "), version


def test_two_replicas_of_the_image_share_one_library_in_redis(image: str, tmp_path: Path) -> None:
    redis_port, replica_a, replica_b = free_port(), free_port(), free_port()
    token = secrets.token_hex(32)
    names: list[str] = []
    with ExitStack() as stack:
        stack.enter_context(
            started(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                redis_port, "redis-server", tmp_path / "redis.log",
            )
        )
        for port in (replica_a, replica_b):
            name = f"pcm-azure-test-{port}"
            names.append(name)
            stack.callback(docker, "rm", "-f", name)
            # The secrets Container Apps would set; the address off loopback,
            # as in the image's CMD (on a free port: the host's network).
            started_container = docker(
                "run", "-d", "--name", name, "--network", "host",
                "-e", f"PY_CODE_MODE_REDIS_URL=redis://127.0.0.1:{redis_port}/0",
                "-e", f"PY_CODE_MODE_TOKEN={token}",
                image, "serve", "--http", f"0.0.0.0:{port}",
            )
            assert started_container.returncode == 0, started_container.stderr
        urls = [f"http://127.0.0.1:{port}/mcp" for port in (replica_a, replica_b)]
        for url, name in zip(urls, names):
            wait_until_serving(url, name)
            # Off loopback: no token, no session.
            assert httpx2.post(url, json=INITIALIZE, headers=ACCEPT).status_code == 401

        async def scenario() -> None:
            async with connect(urls[0], token) as a:
                out, failed = await run(a, "import os\n(os.getuid(), 6 * 7)")
                assert (out, failed) == ("(10001, 42)", False)
                out, failed = await run(
                    a,
                    "skills.create(name='triple', source='def run(x: int):\\n    return 3 * x', description='Triple a number')\n'ok'",
                )
                assert not failed, out
            async with connect(urls[1], token) as b:
                assert await run(b, "skills.triple(x=14)") == ("42", False)

        asyncio.run(scenario())
        keys = subprocess.run(["redis-cli", "-p", str(redis_port), "--scan", "--pattern", "py-code-mode:*"], capture_output=True, text=True)
        assert any("triple" in key for key in keys.stdout.split()), keys.stdout


def wait_until_serving(url: str, name: str) -> None:
    end = time.monotonic() + 60
    health = url.removesuffix("/mcp") + "/healthz"
    while True:
        try:
            if httpx2.get(health, timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        state = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        if state != "true" or time.monotonic() > end:
            pytest.fail(f"{name} is not serving: {docker('logs', name).stderr}")
        time.sleep(0.1)
