"""Storage classes at 0.10's import path (`from py_code_mode.storage import FileStorage`)."""

from py_code_mode._native import FileStorage, RedisStorage

__all__ = ["FileStorage", "RedisStorage"]
