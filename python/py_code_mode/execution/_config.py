"""0.10's executor configurations, with its field names and defaults.

The executors read these by attribute (`SubprocessExecutor(config=...)`);
fields 0.10 used for its Jupyter kernel and venv caching are accepted and have
no effect here (docs/migrating.md says which).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: importing pathlib would add ~6 ms to `import py_code_mode`.
    from pathlib import Path

_PYTHON_VERSION = re.compile(r"^\d+\.\d+$")


def _check_timeout(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"`{name}` must be a positive number of seconds or None, not {value!r}")


@dataclass(frozen=True)
class InProcessConfig:
    """Settings of `InProcessExecutor` (0.10's fields).

    - `tools_path`: a folder of tool YAML files, loaded beside the storage's tools.
    - `default_timeout`: seconds a run may take (None: the session's default).
    - `deps` / `deps_file`: packages installed into this environment at start.
    - `allow_runtime_deps`: agent code may `deps.add()` / `deps.remove()`.
    """

    tools_path: Path | None = None
    default_timeout: float | None = 30.0
    deps: tuple[str, ...] | None = None
    deps_file: Path | None = None
    allow_runtime_deps: bool = True

    def __post_init__(self) -> None:
        _check_timeout("default_timeout", self.default_timeout)


@dataclass(frozen=True)
class SubprocessConfig:
    """Settings of `SubprocessExecutor` (0.10's fields).

    - `python_version`: run the worker on `python<major.minor>` from PATH
      (default: this interpreter).
    - `venv_path`: run the worker on the venv there (made if missing).
    - `tools_path`, `default_timeout`, `deps`, `deps_file`,
      `allow_runtime_deps`: as for `InProcessConfig`.
    - `startup_timeout`, `cache_venv`, `base_deps`, `cleanup_venv_on_close`,
      `ipc_timeout`: accepted for 0.10 code; the worker needs no kernel or
      cached venv, so they change nothing.
    """

    python_version: str | None = None
    venv_path: Path | None = None
    tools_path: Path | None = None
    default_timeout: float | None = 60.0
    startup_timeout: float = 30.0
    deps: tuple[str, ...] | None = None
    deps_file: Path | None = None
    allow_runtime_deps: bool = True
    cache_venv: bool = True
    base_deps: tuple[str, ...] = ()
    cleanup_venv_on_close: bool | None = None
    ipc_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.python_version is not None and not _PYTHON_VERSION.match(self.python_version.strip()):
            raise ValueError(
                f"`python_version` must be in major.minor form (e.g. '3.11'), not {self.python_version!r}"
            )
        _check_timeout("default_timeout", self.default_timeout)
        _check_timeout("startup_timeout", self.startup_timeout)
