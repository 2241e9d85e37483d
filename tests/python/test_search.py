"""Search through the Python API: hybrid with a real embedding model, lexical with
`semantic=False` or when the model cannot be loaded, and how the model is chosen.

The hybrid tests load all-MiniLM-L6-v2 from PY_CODE_MODE_TEST_MODEL_DIR (scripts/test
installs it and exports the variable); without it they are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from py_code_mode import FileStorage, Session

ENV_VAR = "PY_CODE_MODE_EMBEDDING_MODEL"
MISSING_MODEL = "/nonexistent/model-dir"
# The model loads in the background (about 1 s for MiniLM in a dev build); a
# search before that is lexical. Generous for a loaded CI machine.
MODEL_READY_WITHIN = 10.0
# Queries that share no word (after stemming and stop words) with any tool or
# skill of examples/base, so lexical search finds nothing for them.
UNSHARED_TOOL_QUERY = "enumerate folder contents"
UNSHARED_SKILL_QUERY = "say hello to a person"


@pytest.fixture
def model_dir() -> str:
    path = os.environ.get("PY_CODE_MODE_TEST_MODEL_DIR")
    if not path:
        pytest.skip("PY_CODE_MODE_TEST_MODEL_DIR is not set (scripts/test installs the test model)")
    return path


@pytest.fixture(autouse=True)
def no_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which model it wants; the developer's environment does not."""
    monkeypatch.delenv(ENV_VAR, raising=False)


async def until_hybrid(search: Callable[[], Awaitable[Sequence[Any]]]) -> list[Any]:
    """The hits of `search` once they are ranked in hybrid mode (the model is ready)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MODEL_READY_WITHIN
    while True:
        hits = list(await search())
        if hits and all(hit["mode"] == "hybrid" for hit in hits):
            return hits
        if loop.time() > deadline:
            pytest.fail(f"search still not hybrid after {MODEL_READY_WITHIN} s: {hits}")
        await asyncio.sleep(0.05)


def names_and_modes(hits: Sequence[Any]) -> list[tuple[str, str]]:
    return [(hit["name"], hit["mode"]) for hit in hits]


async def test_paraphrases_find_the_tool_and_the_skill_in_hybrid_mode(
    library: Path, make_executor: Callable[[], Any], model_dir: str
) -> None:
    storage = FileStorage(base_path=library)
    async with Session(storage, make_executor(), embedding_model=model_dir) as session:
        tools = await until_hybrid(lambda: session.search_tools("how many words are in a document"))
        skills = await until_hybrid(lambda: session.search_skills("tally the terms in a passage"))
        in_code = await session.run(
            f'[(t["name"], t["mode"]) for t in tools.search("{UNSHARED_TOOL_QUERY}", limit=1)]'
        )

    assert names_and_modes(tools)[0] == ("word_count", "hybrid")
    assert names_and_modes(skills)[0] == ("count_words", "hybrid")
    assert in_code.is_ok, in_code.error
    assert in_code.value == [["list_files", "hybrid"]]
    # Document vectors are cached in the session's storage, so a restart embeds nothing.
    assert len(list(library.glob(".cache/emb-*"))) == 5  # 3 tools, 2 skills


async def test_hybrid_finds_what_shares_no_word_with_the_query(library: Path, model_dir: str) -> None:
    async with Session.inprocess(library, semantic=False) as lexical:
        lexical_hits = (
            await lexical.search_tools(UNSHARED_TOOL_QUERY),
            await lexical.search_skills(UNSHARED_SKILL_QUERY),
        )
    async with Session.inprocess(library, embedding_model=model_dir) as hybrid:
        tools = await until_hybrid(lambda: hybrid.search_tools(UNSHARED_TOOL_QUERY, limit=1))
        skills = await until_hybrid(lambda: hybrid.search_skills(UNSHARED_SKILL_QUERY, limit=1))

    assert lexical_hits == ([], [])
    assert (names_and_modes(tools), names_and_modes(skills)) == (
        [("list_files", "hybrid")],
        [("greet", "hybrid")],
    )


async def test_semantic_false_searches_lexically(
    library: Path, monkeypatch: pytest.MonkeyPatch, model_dir: str
) -> None:
    # Even with a working model named by the environment, no model is loaded.
    monkeypatch.setenv(ENV_VAR, model_dir)
    async with Session(FileStorage(base_path=library), semantic=False) as session:
        first = await session.search_tools("count words")
        skills = await session.search_skills("count words")
        in_code = await session.run('[t["mode"] for t in tools.search("count words")]')

    assert session.embedding_model is None
    assert names_and_modes(first) == [("word_count", "lexical"), ("echo", "lexical")]
    assert names_and_modes(skills) == [("count_words", "lexical")]
    assert in_code.value == ["lexical", "lexical"]
    assert list(library.glob(".cache/emb-*")) == []


async def test_a_model_that_cannot_load_leaves_search_lexical(
    library: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="py_code_mode")
    storage = FileStorage(base_path=library)
    async with Session(storage, embedding_model=MISSING_MODEL) as session:
        # Twice: the first search may come before the loading thread has failed.
        first = await session.search_tools("count words")
        second = await session.search_tools("count words")
        skills = await session.search_skills("count words")

    assert session.embedding_model == MISSING_MODEL
    expected = [("word_count", "lexical"), ("echo", "lexical")]
    assert names_and_modes(first) == names_and_modes(second) == expected
    assert names_and_modes(skills) == [("count_words", "lexical")]
    # Said once, in Python's log, naming the model.
    said = [r for r in caplog.records if "search stays lexical" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert said[0].name == "py_code_mode"
    assert said[0].levelno == logging.WARNING
    assert MISSING_MODEL in said[0].getMessage()


async def test_the_environment_variable_names_the_model(
    library: Path, monkeypatch: pytest.MonkeyPatch, model_dir: str
) -> None:
    monkeypatch.setenv(ENV_VAR, model_dir)
    async with Session(FileStorage(base_path=library)) as session:
        hits = await until_hybrid(lambda: session.search_tools(UNSHARED_TOOL_QUERY, limit=1))

    assert session.embedding_model == model_dir
    assert names_and_modes(hits) == [("list_files", "hybrid")]


async def test_the_argument_wins_over_the_environment_variable(
    library: Path, monkeypatch: pytest.MonkeyPatch, model_dir: str
) -> None:
    monkeypatch.setenv(ENV_VAR, MISSING_MODEL)
    async with Session.from_base(library, embedding_model=Path(model_dir)) as session:
        hits = await until_hybrid(lambda: session.search_skills(UNSHARED_SKILL_QUERY, limit=1))

    assert session.embedding_model == model_dir
    assert names_and_modes(hits) == [("greet", "hybrid")]


def test_the_model_is_chosen_when_the_session_is_created(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Creating a session starts loading (here: failing to load) and never blocks.
    assert Session(FileStorage(base_path=library)).embedding_model == "bge-small"
    monkeypatch.setenv(ENV_VAR, "")
    assert Session.inprocess(library).embedding_model == "bge-small"
    monkeypatch.setenv(ENV_VAR, MISSING_MODEL)
    assert Session.subprocess(library).embedding_model == MISSING_MODEL
    assert Session.subprocess(library, embedding_model="bge-base", semantic=False).embedding_model is None
    with pytest.raises(ValueError, match="`embedding_model` is empty"):
        Session.from_base(library, embedding_model="")
