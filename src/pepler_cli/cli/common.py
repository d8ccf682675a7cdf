"""What every subcommand shares: its flags' shape, and turning a PeplerError into one line and an exit code.

Command modules import only typer, the standard library and this module at the top (``pepler --help`` stays
instant); each imports the one library function it calls inside the command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from pepler_cli.errors import PeplerError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "YAML file of options (keys as the flag names); flags given here override it."


def clean_up_option() -> Any:
    """``--clean-up-spaces/--no-clean-up-spaces``, shared by prepare (references) and generate (explanations)."""
    return typer.Option(
        None,
        "--clean-up-spaces/--no-clean-up-spaces",
        help="Remove spaces before punctuation and clitics as the authors' decode did. (default: yes)",
        show_default=False,
    )


def switch(name: str, help: str) -> Any:
    """An on/off option that is off unless given (``given()`` then leaves a ``--config`` file's value alone)."""
    return typer.Option(False, name, help=help)


def trust_remote_code_option() -> Any:
    """``--trust-remote-code``: train with a hub backbone that ships code, or load a run trained so."""
    return switch(
        "--trust-remote-code",
        "Let the backbone run the code it ships (config.json auto_map): train a model that needs it, or load a run "
        "trained with it. Only for models you trust.",
    )


def given(flags: dict[str, Any], *switches: str) -> dict[str, Any]:
    """``flags`` with the switches that were not given as None: a config file's value then stands."""
    return {**flags, **{name: flags[name] or None for name in switches}}


def flag(*names: str, help: str, default: Any = None) -> Any:
    """An option that is None unless given, so a ``--config`` file's value is not overridden by a default.

    ``default`` is only shown in the help: the library's option models hold the real defaults.
    """
    shown = f" (default: {default})" if default is not None else ""
    return typer.Option(None, *names, help=help + shown, show_default=False)


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

            # Escaped: a message like "expected [min, max]" must not be read as rich markup, nor ":cat:" in a
            # file name as an emoji code.
            message = escape(one_line(error.message))
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, emoji=False)
            raise typer.Exit(code=error.exit_code) from None
        except KeyboardInterrupt:
            from pepler_cli.console import err_console

            err_console.print("[bold red]interrupted[/]: nothing half-written was kept")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


# Line breaks and other control characters (a terminal's escape sequences among them) as Python writes them in
# a string literal: a message quoting a damaged file stays one line and cannot move the cursor or recolour it.
_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029) if c != 0x09}


def one_line(text: str) -> str:
    """``text`` with every line break and control character written as an escape such as ``\\n``."""
    return text.translate(_ESCAPES)


def tell(message: str) -> None:
    """A line for the person at the terminal, on stderr so stdout stays parseable."""
    from pepler_cli.console import err_console

    err_console.print(message, highlight=False, soft_wrap=True, markup=False)


def model_options(pairs: list[str]) -> dict[str, Any]:
    """``--model-option KEY=VALUE`` pairs as a mapping, each value read as YAML (``256`` a number, ``true`` a
    boolean), as a ``--config`` file's ``model-options`` would give it."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--model-option {pair!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            options[key.strip()] = value
    return options
