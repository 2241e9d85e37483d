"""The shapes of the dicts `Session` methods return; agent code sees the same."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class ParamInfo(TypedDict):
    """A parameter of a skill's `run()` or of a tool callable."""

    name: str
    type: str
    required: bool
    default: NotRequired[Any]
    description: str


class CallableInfo(TypedDict):
    """One callable of a tool (the tool itself for simple tools)."""

    name: str
    description: str
    parameters: list[ParamInfo]


class ToolInfo(TypedDict):
    """A tool as `tools.list()` and `Session.list_tools()` describe it."""

    name: str
    type: str
    description: str
    tags: list[str]
    callables: list[CallableInfo]
    unavailable: NotRequired[str]
    """Why the callables are unknown right now: an MCP server still connecting."""


SearchMode = Literal["lexical", "hybrid"]
"""How a search ranked its hits: by words only (no embedding model, or not ready
yet), or by words fused with embedding similarity."""


class ScoredToolInfo(ToolInfo):
    """A search hit: the tool, its relevance and how it was ranked."""

    score: float
    mode: SearchMode


class SkillInfo(TypedDict):
    """A skill as listings describe it (no source)."""

    name: str
    description: str
    parameters: list[ParamInfo]
    is_async: bool
    created_at: str
    updated_at: str
    version: int | None
    session: str | None
    run: str | None
    hash: str
    stale: str | None


class SkillVersion(TypedDict):
    """One kept version of a skill, as `skill_history` lists it."""

    version: int
    created_at: str
    session: str
    run: str | None
    description: str
    hash: str
    source: str
    tools: dict[str, str]


class CaseReport(TypedDict):
    """The replay of one recorded case, as `test_skill` lists it."""

    case: str
    ok: bool
    diff: str


class ScoredSkillInfo(SkillInfo):
    """A search hit: the skill, its relevance and how it was ranked."""

    score: float
    mode: SearchMode


class Skill(SkillInfo):
    """One skill with its source, as `get_skill` returns it."""

    source: str


class ArtifactInfo(TypedDict):
    """What is known about an artifact besides its data."""

    name: str
    type: Literal["json", "text", "bytes"]
    description: str
    metadata: dict[str, Any]
    size: int
    created_at: str
    updated_at: str


__all__ = [
    "ArtifactInfo",
    "CallableInfo",
    "ParamInfo",
    "ScoredSkillInfo",
    "ScoredToolInfo",
    "SearchMode",
    "Skill",
    "SkillInfo",
    "ToolInfo",
]
