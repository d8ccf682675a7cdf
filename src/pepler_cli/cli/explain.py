"""``pepler explain``: one (user, item) pair's explanation from a trained run, for a quick look."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli import explaining_options as options
from pepler_cli.cli.common import CONFIG_HELP, flag, given, report_errors


@report_errors
def explain_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`."),
    user: str | None = flag("--user", help="The user's id, as in the dataset."),
    item: str | None = flag("--item", help="The item's id, as in the dataset."),
    feature: str | None = flag(
        "--feature", help='Explain the pair about this feature (e.g. "sound"): a run trained with hints.'
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    data: Path | None = flag("--data", help="Prepared dataset (default: the one the run was trained on)."),
    max_tokens: int | None = options.MAX_TOKENS,
    decoding: str | None = options.DECODING,
    beams: int | None = options.BEAMS,
    length_penalty: float | None = options.LENGTH_PENALTY,
    beam_groups: int | None = options.BEAM_GROUPS,
    diversity_penalty: float | None = options.DIVERSITY_PENALTY,
    no_repeat_ngram: int | None = options.NO_REPEAT_NGRAM,
    repetition_penalty: float | None = options.REPETITION_PENALTY,
    top_k: int | None = options.TOP_K,
    top_p: float | None = options.TOP_P,
    temperature: float | None = options.TEMPERATURE,
    seed: int | None = options.SEED,
    unknown: str | None = options.UNKNOWN,
    cold_start: str | None = options.COLD_START,
    history: Path | None = options.HISTORY,
    feature_hint: str | None = options.FEATURE_HINT,
    feature_predictor: str | None = options.FEATURE_PREDICTOR,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    device: str | None = options.DEVICE,
    clean_up_spaces: bool | None = options.CLEAN_UP_SPACES,
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Explain one (user, item) pair with a trained run: the explanation, and the predicted rating when the run
    has a rating head."""
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags.pop("as_json")
    flags = given(flags, "trust_remote_code")

    import json
    from dataclasses import asdict

    from pepler_cli.config import ExplainConfig, resolve
    from pepler_cli.generation.explainer import explain_pair

    config = resolve(ExplainConfig, config_file, flags)
    explanation = explain_pair(config)
    if as_json:
        typer.echo(
            json.dumps({"user": config.user, "item": config.item, **asdict(explanation)}, ensure_ascii=False)
        )
        return
    typer.echo(explanation.generated)
    if explanation.predicted_rating is not None:
        typer.echo(f"predicted rating: {explanation.predicted_rating:.2f}")
    if explanation.hint is not None:
        typer.echo(f"feature hint: {explanation.hint}")
    if explanation.cold is not None:
        typer.echo(f"cold: {explanation.cold}")
