"""Executors by isolation level, at the seed's import paths.

- `py_code_mode.backends.in_process.InProcessExecutor`: this interpreter (default).
- `py_code_mode.backends.subprocess.SubprocessExecutor`: a Python worker process.
- `py_code_mode.backends.container.ContainerExecutor`: the worker in a Docker/Podman container.
"""
