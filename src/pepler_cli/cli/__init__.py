"""The command line: Typer only. Each subcommand lives in its own module and calls library code."""
