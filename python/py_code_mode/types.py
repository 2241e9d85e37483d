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


class ScoredToolInfo(ToolInfo):
    """A search hit: the tool and its relevance."""

    score: float


class SkillInfo(TypedDict):
    """A skill as listings describe it (no source)."""

    name: str
    description: str
    parameters: list[ParamInfo]
    is_async: bool
    created_at: str
    updated_at: str


class ScoredSkillInfo(SkillInfo):
    """A search hit: the skill and its relevance."""

    score: float


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
    "Skill",
    "SkillInfo",
    "ToolInfo",
]
