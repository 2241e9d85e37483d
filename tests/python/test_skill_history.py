"""Skill versions, rollback and recorded tests through the Python facade (every executor)."""

from __future__ import annotations

from py_code_mode import Session


async def test_history_rollback_and_versions_through_the_facade(session: Session) -> None:
    await session.add_skill("twice", "def run(n: int):\n    return n * 2\n", "Double")
    await session.add_skill("twice", "def run(n: int):\n    return n * 3\n", "Triple")

    history = await session.skill_history("twice")
    assert [(h["version"], h["description"]) for h in history] == [(2, "Triple"), (1, "Double")]
    assert all(h["hash"].startswith("sha256:") and h["run"] is None for h in history)
    assert "n * 2" in (await session.get_skill("twice", version=1))["source"]

    rolled = await session.rollback_skill("twice", 1)
    assert (rolled["version"], rolled["description"]) == (3, "Double")
    result = await session.run("skills.twice(n=5)")
    assert result.value == 10


async def test_a_recorded_case_is_tested_from_the_facade(session: Session) -> None:
    await session.add_skill("shout", "def run(text: str):\n    return tools.echo(text=text).strip().upper()\n")
    recorded = await session.run("skills.record('shout', 'hello', text='hello')")
    assert recorded.value == "HELLO", recorded.error
    assert await session.test_skill("shout") == [{"case": "hello", "ok": True, "diff": ""}]

    await session.add_skill("shout", "def run(text: str):\n    return tools.echo(text=text + '!').strip().upper()\n")
    [report] = await session.test_skill("shout")
    assert not report["ok"]
    assert report["diff"].startswith('call 1: expected `tools.echo(text="hello")`, got `tools.echo(text="hello!")`')
    listed = {s["name"]: s for s in await session.list_skills()}
    assert listed["shout"]["stale"] is None
    assert listed["shout"]["version"] == 2


async def test_record_skill_records_a_case_from_the_facade(session: Session) -> None:
    # `name` and `case` are positional-only: the skill takes parameters of those names.
    await session.add_skill(
        "label", "def run(name: str, case: str):\n    return tools.echo(text=name + '/' + case).strip()\n"
    )
    recorded = await session.record_skill("label", "first", name="a", case="b")
    assert recorded.error is None, recorded.error
    assert recorded.value == "a/b"
    assert await session.test_skill("label") == [{"case": "first", "ok": True, "diff": ""}]
