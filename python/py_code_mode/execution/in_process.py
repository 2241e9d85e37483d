"""`InProcessExecutor` and `InProcessConfig` at 0.10's submodule path."""

from py_code_mode._native import InProcessExecutor
from py_code_mode.execution._config import InProcessConfig

__all__ = ["InProcessConfig", "InProcessExecutor"]
