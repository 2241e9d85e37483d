"""`SubprocessExecutor`: agent code runs in a Python worker process."""

from py_code_mode._native import SubprocessExecutor

__all__ = ["SubprocessExecutor"]
