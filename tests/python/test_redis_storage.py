"""RedisStorage from Python, against a real redis-server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from py_code_mode import RedisStorage, Session, StorageError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("`redis-server` is not on PATH (Debian: apt-get install redis-server)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    client = redis_lib.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:  # poll, bounded, until the server answers
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not answer within 10 s")
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


async def test_seed_redis_example_with_a_client_and_with_a_url(
    redis_url: str, make_executor: Callable[[], Any]
) -> None:
    client = redis_lib.from_url(redis_url)
    storage = RedisStorage(redis=client, prefix="seed-agent")
    async with Session(storage=storage, executor=make_executor()) as session:
        result = await session.run(
            "skills.create(name='double', code='def run(x: int):\\n    return 2 * x', description='Double it')\n"
            "artifacts.save('notes.txt', 'kept', description='a note')\n"
            "skills.double(x=21)"
        )
        assert result.error is None, result.error
        assert result.value == 42

    # Another host with the URL form sees the same tenant; a second prefix sees nothing.
    async with Session(storage=RedisStorage(url=redis_url, prefix="seed-agent"), executor=make_executor()) as other:
        assert [(s["name"], s["description"]) for s in await other.list_skills()] == [("double", "Double it")]
        assert [a["name"] for a in await other.list_artifacts()] == ["notes.txt"]
        assert (await other.run("artifacts.load('notes.txt')")).value == "kept"
    async with Session(storage=RedisStorage(url=redis_url, prefix="another"), executor=make_executor()) as stranger:
        assert await stranger.list_skills() == []
        assert await stranger.list_artifacts() == []


def test_unreachable_redis_names_the_url_without_the_password() -> None:
    port = _free_port()
    with pytest.raises(StorageError) as caught:
        RedisStorage(url=f"redis://:s3cret@127.0.0.1:{port}", prefix="x")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_redis_storage_needs_exactly_one_source() -> None:
    with pytest.raises(TypeError, match="exactly one of"):
        RedisStorage(prefix="x")
