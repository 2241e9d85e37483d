"""py-code-mode: tools your agents can search, compose, and learn from.

```python
from pathlib import Path
from py_code_mode import Session, FileStorage

storage = FileStorage(base_path=Path("./configs"))
async with Session(storage=storage) as session:
    result = await session.run("tools.list()")
```

The classes are implemented in Rust (`py_code_mode._native`); see docs/python.md.
"""

from typing import TYPE_CHECKING, Any

from py_code_mode._native import (
    ContainerConfig,
    ContainerExecutor,
    ExecutionError,
    ExecutionResult,
    FileStorage,
    InProcessExecutor,
    RedisStorage,
    Session,
    SubprocessExecutor,
)
from py_code_mode.execution import Capability
from py_code_mode.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    CodeExecutionError,
    CodeModeError,
    ExecutionTimeoutError,
    ExecutorError,
    InvalidNameError,
    SkillError,
    SkillNotFoundError,
    StorageError,
    ToolError,
    ToolNotFoundError,
)

if TYPE_CHECKING:
    from py_code_mode.execution import InProcessConfig, SubprocessConfig


def __getattr__(name: str) -> Any:
    # The 0.10 configurations load on first use (see py_code_mode.execution).
    if name in ("InProcessConfig", "SubprocessConfig"):
        from py_code_mode import execution

        value = getattr(execution, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Capability",
    "InProcessConfig",
    "SubprocessConfig",
    "ArtifactError",
    "ArtifactNotFoundError",
    "CodeExecutionError",
    "CodeModeError",
    "ContainerConfig",
    "ContainerExecutor",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionTimeoutError",
    "ExecutorError",
    "FileStorage",
    "RedisStorage",
    "InProcessExecutor",
    "InvalidNameError",
    "Session",
    "SkillError",
    "SkillNotFoundError",
    "StorageError",
    "SubprocessExecutor",
    "ToolError",
    "ToolNotFoundError",
]
