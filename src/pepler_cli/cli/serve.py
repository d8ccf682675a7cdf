"""``pepler serve``: an HTTP JSON API that explains the pairs of each request with a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli import explaining_options as options
from pepler_cli.cli.common import CONFIG_HELP, flag, given, report_errors


@report_errors
def serve_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`."),
    host: str | None = flag(
        "--host",
        help="Address to listen on; one that is not loopback needs --token-file.",
        default="127.0.0.1",
    ),
    port: int | None = flag("--port", help="Port to listen on.", default=8000),
    token_file: Path | None = flag(
        "--token-file", help="File holding the API token requests must send (Authorization: Bearer TOKEN)."
    ),
    batch_size: int | None = flag(
        "--batch-size", help="Most pairs decoded together (concurrent requests share a batch).", default=256
    ),
    batch_wait_ms: float | None = flag(
        "--batch-wait-ms",
        help="A batch waits for more requests while they keep arriving less than this apart (at most 10 times "
        "this in all).",
        default=5.0,
    ),
    queue_size: int | None = flag(
        "--queue-size", help="Requests that may wait; the next is answered 503 with Retry-After.", default=64
    ),
    request_timeout: float | None = flag(
        "--request-timeout", help="Seconds a request may wait for its explanations (then 504).", default=60.0
    ),
    max_pairs: int | None = flag("--max-pairs", help="Most pairs in one request (more: 422).", default=256),
    max_body_bytes: int | None = flag(
        "--max-body-bytes", help="Largest request body (more: 413).", default=1_048_576
    ),
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
    feature: str | None = options.FEATURE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    device: str | None = options.DEVICE,
    clean_up_spaces: bool | None = options.CLEAN_UP_SPACES,
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Serve a trained run over HTTP: POST /explain, GET /healthz, /readyz, /info; OpenAPI docs at /docs. The
    decoding options are each request's defaults. SIGTERM finishes the requests in flight, then exits 0."""
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags = given(flags, "trust_remote_code")

    from pepler_cli.config import ServeConfig, resolve
    from pepler_cli.serving.server import serve

    serve(resolve(ServeConfig, config_file, flags))
