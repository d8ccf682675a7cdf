"""What every subcommand shares: turning a PeplerError into one clear line and an exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from pepler_cli.errors import PeplerError

F = TypeVar("F", bound=Callable[..., Any])


def report_errors(command: F) -> F:
    """Wrap a command so a PeplerError prints ``error: <message>`` on stderr and exits non-zero.

    No traceback: the message is meant for the person at the terminal and names the file, record and field.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PeplerError as error:
            from rich.markup import escape

            from pepler_cli.console import err_console

            # Escaped: a message like "expected [min, max]" must not be read as rich markup.
            err_console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=error.exit_code) from None
        except KeyboardInterrupt:
            from pepler_cli.console import err_console

            err_console.print("[bold red]interrupted[/]: nothing half-written was kept")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]
