"""`Session` at 0.10's import path (`from py_code_mode.session import Session`)."""

from py_code_mode._native import ExecutionResult, Session

__all__ = ["ExecutionResult", "Session"]
