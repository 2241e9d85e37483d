"""`ContainerExecutor`: agent code runs in a Docker or Podman container.

```python
from py_code_mode.backends.container import ContainerExecutor, ContainerConfig
config = ContainerConfig(image="py-code-mode:latest", timeout=60.0)
async with Session(storage=storage, executor=ContainerExecutor(config)) as session:
    ...
```

Build the image with `docker build -f docker/Dockerfile.tools -t py-code-mode:latest .`;
see docs/container.md.
"""

from py_code_mode._native import ContainerConfig, ContainerExecutor

__all__ = ["ContainerConfig", "ContainerExecutor"]
