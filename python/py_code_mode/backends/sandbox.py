"""`SandboxExecutor`: agent code runs in a Python worker inside a kernel sandbox.

Namespaces, a minimal filesystem view, Landlock, seccomp and cgroup limits; no
network unless `SandboxConfig(network=True)`. See docs/sandbox.md.
"""

from py_code_mode._native import SandboxConfig, SandboxExecutor, sandbox_status

__all__ = ["SandboxConfig", "SandboxExecutor", "sandbox_status"]
