"""Python functions as tools: what the native `Session` reads from a function.

`describe(fn)` turns a function's signature and docstring into the tool's
listing (name, description, parameters); `schedule(loop, awaitable)` runs an
async tool on the application's event loop. The call itself happens in Rust
(`crates/py-code-mode-python/src/functions.rs`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import re
from typing import Any, Callable

# Docstring sections that end the description (Google and NumPy styles).
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns?|Yields?|Raises|Examples?|Notes?)\s*:?\s*$"
)
_GOOGLE_ARG = re.compile(r"^\s*\*{0,2}(\w+)(?:\s*\(([^)]*)\))?:\s*(.*)$")
_SPHINX_ARG = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^\s*(\w+)(?:\s+:\s*(.*))?$")


def describe(fn: Callable[..., Any], name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """The tool `fn` becomes: its name, description and keyword parameters."""
    if not callable(fn):
        raise TypeError(f"a tool must be a function, not {type(fn).__name__}")
    tool_name = name or getattr(fn, "__name__", None)
    if not isinstance(tool_name, str) or not tool_name or tool_name == "<lambda>":
        raise TypeError("this callable has no usable name\nhint: pass `name=` when registering it")
    try:
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        # An annotation that cannot be evaluated stays as written.
        signature = inspect.signature(fn)
    summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    parameters = []
    extra_keywords = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"`{tool_name}` has the positional-only parameter `{param.name}`: agent code calls tools by keyword"
            )
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra_keywords = True
            continue
        entry: dict[str, Any] = {
            "name": param.name,
            "type": _type_name(param.annotation),
            "required": param.default is inspect.Parameter.empty,
            "description": arg_docs.get(param.name, ""),
        }
        if param.default is not inspect.Parameter.empty:
            entry["default"] = _json_default(param.default)
        parameters.append(entry)
    return {
        "name": tool_name,
        "description": summary if description is None else description,
        "parameters": parameters,
        "extra_keywords": extra_keywords,
    }


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def _json_default(value: Any) -> Any:
    """A default as listings show it: the value when JSON can hold it, else its repr."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return json.loads(text)


_ARG_SECTIONS = ("args", "arguments", "parameters", "params", "keyword args", "keyword arguments")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and per-parameter text.

    Reads Google (`Args:` then `name (type): text`), NumPy (`Parameters`,
    dashes, then `name : type` over indented text) and Sphinx (`:param name: text`).
    """
    lines = doc.splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    index = 0
    while index < len(lines) and not _SECTION.match(lines[index]) and not _SPHINX_ARG.match(lines[index]):
        summary.append(lines[index])
        index += 1
    section = None
    current = None
    arg_indent = None
    while index < len(lines):
        line = lines[index]
        index += 1
        sphinx = _SPHINX_ARG.match(line)
        if sphinx:
            current = sphinx.group(1)
            args[current] = sphinx.group(2).strip()
            section, arg_indent = "sphinx", len(line) - len(line.lstrip())
            continue
        header = _SECTION.match(line)
        if header:
            section, current, arg_indent = header.group(1).lower(), None, None
            # NumPy underlines its headers.
            if index < len(lines) and lines[index].strip() and set(lines[index].strip()) == {"-"}:
                index += 1
            continue
        if section not in (*_ARG_SECTIONS, "sphinx") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if arg_indent is None:
            arg_indent = indent
        if indent <= arg_indent:
            google = _GOOGLE_ARG.match(line)
            numpy = _NUMPY_ARG.match(line)
            if section == "sphinx":
                current = None
            elif google:
                current = google.group(1)
                args[current] = google.group(3).strip()
            elif numpy:
                current = numpy.group(1)
                args[current] = ""
            else:
                current = None
            continue
        if current is not None:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(summary).strip(), args


async def _await(awaitable: Any) -> Any:
    return await awaitable


def schedule(loop: asyncio.AbstractEventLoop | None, awaitable: Any) -> concurrent.futures.Future | None:
    """Runs `awaitable` on `loop` (the application's) when that loop is running.

    Returns `None` when it is not (no loop known, or it stopped): the caller
    then runs the awaitable to completion on a loop of its own.
    """
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    coroutine = awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    return asyncio.run_coroutine_threadsafe(coroutine, loop)


def run_here(awaitable: Any) -> Any:
    """Runs `awaitable` to completion on a new event loop in this thread."""
    coroutine = awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    return asyncio.run(coroutine)


def describe_error(exc: BaseException) -> str:
    """What agent code reads in its `ToolError`: the type and the message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
