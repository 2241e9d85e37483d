"""Executors and their configurations at 0.10's import path.

```python
from py_code_mode.execution import SubprocessExecutor, SubprocessConfig, Capability
executor = SubprocessExecutor(config=SubprocessConfig(default_timeout=30))
```

`InProcessExecutor` and `SubprocessExecutor` are the package's own classes
(the seed's forms keep working); `ContainerExecutor` and `ContainerConfig`
come from `py_code_mode.backends.container` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from py_code_mode._native import InProcessExecutor, SubprocessExecutor

if TYPE_CHECKING:
    from py_code_mode.execution._config import InProcessConfig, SubprocessConfig


class Capability:
    """What an executor may provide; ask with `session.supports(Capability.TIMEOUT)`."""

    TIMEOUT = "timeout"
    PROCESS_ISOLATION = "process_isolation"
    NETWORK_ISOLATION = "network_isolation"
    NETWORK_FILTERING = "network_filtering"
    FILESYSTEM_ISOLATION = "filesystem_isolation"
    MEMORY_LIMIT = "memory_limit"
    CPU_LIMIT = "cpu_limit"
    RESET = "reset"
    DEPS_INSTALL = "deps_install"
    DEPS_UNINSTALL = "deps_uninstall"

    @classmethod
    def all(cls) -> set[str]:
        """Every capability name."""
        return {v for k, v in vars(cls).items() if k.isupper()}


_LAZY = {"ContainerExecutor", "ContainerConfig"}
_CONFIGS = {"InProcessConfig", "SubprocessConfig"}


def __getattr__(name: str) -> Any:
    # Imported only when asked for: the container backend is optional and
    # heavier than the rest; the 0.10 configurations are dataclasses, whose
    # making costs a new process ~7 ms that code without them need not pay.
    if name in _LAZY:
        from py_code_mode.backends import container

        value = getattr(container, name)
    elif name in _CONFIGS:
        from py_code_mode.execution import _config

        value = getattr(_config, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "Capability",
    "ContainerConfig",
    "ContainerExecutor",
    "InProcessConfig",
    "InProcessExecutor",
    "SubprocessConfig",
    "SubprocessExecutor",
]
