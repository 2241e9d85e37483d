"""The exceptions py-code-mode raises, in one place.

`Session` methods raise these (the native module maps each core error to one
class here); agent code's own errors never raise: they are in
`ExecutionResult.error`, and `ExecutionResult.raise_for_error()` turns them
into `CodeExecutionError` or `ExecutionTimeoutError` on request.
"""

from __future__ import annotations


class CodeModeError(Exception):
    """Base class of every py-code-mode error."""


class ToolNotFoundError(CodeModeError, LookupError):
    """No tool (or tool callable) has that name."""


class ToolError(CodeModeError):
    """A tool definition is invalid, or a tool ran and failed."""


class SkillNotFoundError(CodeModeError, LookupError):
    """No skill has that name."""


class SkillError(CodeModeError):
    """A skill could not be created or parsed (syntax error, no `run()`)."""


class ArtifactError(CodeModeError):
    """Artifact data could not be stored or read back."""


class ArtifactNotFoundError(ArtifactError, KeyError):
    """No artifact has that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidNameError(CodeModeError, ValueError):
    """A skill or artifact name is not allowed (it escapes its folder, or is reserved)."""


class StorageError(CodeModeError):
    """The storage backend failed (I/O error, corrupt file, unreachable server)."""


class ExecutorError(CodeModeError):
    """The executor itself failed: no Python worker, or the session is closed."""


class DepsError(CodeModeError):
    """A package could not be installed or removed, or `deps` is not allowed here."""


class InvalidDependencyError(DepsError, ValueError):
    """A package spec is not a PEP 508 name with optional extras and version
    specifiers (options, paths and URLs are refused)."""


class ConfigurationError(CodeModeError, ValueError):
    """A configuration value is invalid (0.10's name; ours raise `ValueError`
    or `TypeError`, which this also is)."""


class CodeExecutionError(CodeModeError):
    """Agent code raised; raised by `ExecutionResult.raise_for_error()`.

    `error_type` is the agent's exception class name, `traceback` its traceback.
    """

    def __init__(self, message: str, error_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback


class ExecutionTimeoutError(CodeExecutionError, TimeoutError):
    """A run exceeded its timeout and was stopped."""


# 0.10's names, mapped onto the classes above (docs/migrating.md has the table).
ToolCallError = ToolError
ToolTimeoutError = ToolError
ArtifactWriteError = ArtifactError
SkillValidationError = SkillError
SkillExecutionError = CodeExecutionError
DependencyError = DepsError
StorageReadError = StorageError
StorageWriteError = StorageError
RPCError = ExecutorError
RPCTransportError = ExecutorError
NamespaceError = CodeModeError

__all__ = [
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactWriteError",
    "CodeExecutionError",
    "ConfigurationError",
    "DependencyError",
    "DepsError",
    "InvalidDependencyError",
    "NamespaceError",
    "RPCError",
    "RPCTransportError",
    "SkillExecutionError",
    "SkillValidationError",
    "StorageReadError",
    "StorageWriteError",
    "ToolCallError",
    "ToolTimeoutError",
    "CodeModeError",
    "ExecutionTimeoutError",
    "ExecutorError",
    "InvalidNameError",
    "SkillError",
    "SkillNotFoundError",
    "StorageError",
    "ToolError",
    "ToolNotFoundError",
]
