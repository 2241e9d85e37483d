"""`SubprocessExecutor` and `SubprocessConfig` at 0.10's submodule path."""

from py_code_mode._native import SubprocessExecutor
from py_code_mode.execution._config import SubprocessConfig

__all__ = ["SubprocessConfig", "SubprocessExecutor"]
