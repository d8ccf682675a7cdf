"""Where output goes: progress, logs and tables for people on stderr; stdout stays parseable."""

from __future__ import annotations

from rich.console import Console

err_console = Console(stderr=True)
out_console = Console()
