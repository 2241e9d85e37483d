"""`InProcessExecutor`: agent code runs in this interpreter, on a thread of its own."""

from py_code_mode._native import InProcessExecutor

__all__ = ["InProcessExecutor"]
