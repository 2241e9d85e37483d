"""Greet someone by name, using the echo tool."""


def run(name: str = "world") -> str:
    """Return a greeting.

    Args:
        name: who to greet
    """
    return tools.echo(text=f"Hello, {name}!").strip()
