"""``pepler serve`` as a library call: check the options, bind, load the run, serve until SIGTERM or Ctrl-C.

The server binds first and loads the run on a thread, so ``/healthz`` answers at once and ``/readyz`` says when
the run is loaded; a run that fails to load stops the server with its one-line error. SIGTERM (or SIGINT)
stops accepting connections, lets the requests in flight finish (up to ``--request-timeout``), and the process
exits 0. It binds to 127.0.0.1 unless told otherwise, and refuses any address that is not loopback without an
API token (``--token-file``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pepler_cli.config import ServeConfig
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import read_user_text
from pepler_cli.runs import read_manifest

LOOPBACK_NAMES = frozenset({"localhost"})
MIN_TOKEN_CHARACTERS = 16
logger = logging.getLogger("uvicorn.error")  # where uvicorn says it started: the same stream


def serve(config: ServeConfig) -> None:
    """Serve ``config.run`` until stopped (the module's docstring); a failed load is a PeplerError."""
    try:
        import uvicorn
        from fastapi import FastAPI
    except ImportError:
        raise PeplerError(
            "pepler serve needs FastAPI and uvicorn: pip install 'pepler-cli[serve]'", exit_code=2
        ) from None
    from pepler_cli.serving.app import Guard, ServerState, build_app

    token = read_token(config.token_file) if config.token_file is not None else None
    check_address(config.host, token)
    manifest = read_manifest(Path(config.run))  # a wrong path fails now, not after binding
    history = _history(config)
    state = ServerState(config, token, info=run_info(config, manifest))
    app: FastAPI = build_app(state)
    server = _graceful_server(
        uvicorn.Config(
            Guard(app, token, config.max_body_bytes),
            host=config.host,
            port=config.port,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=int(config.request_timeout) + 5,
            log_level="info",
        )
    )
    app.router.lifespan_context = _lifespan(state, server, history)
    server.run()
    if state.load_error is not None:
        raise PeplerError(state.load_error)


def _lifespan(state: Any, server: Any, history: list[Any]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(_load(state, server, history))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if state.batcher is not None:
            await state.batcher.stop()

    return lifespan


async def _load(state: Any, server: Any, history: list[Any]) -> None:
    """Load the run on a thread; then start the batcher (the server is ready) or stop the server."""
    from pepler_cli.devices import resolve_device
    from pepler_cli.generation.explainer import Explainer
    from pepler_cli.run_model import load_run
    from pepler_cli.serving.batcher import Batcher

    config: ServeConfig = state.config

    def load() -> Explainer:
        device = resolve_device(config.device)
        return Explainer(config, load_run(config.run, device, config.trust_remote_code), device, history)

    try:
        explainer = await asyncio.get_running_loop().run_in_executor(None, load)
    except PeplerError as error:
        state.load_error = error.message
        server.should_exit = True
        return
    state.explainer = explainer

    def explain(pairs: Any, options: Any) -> list[Any]:
        return explainer.explain(pairs, options, lambda k: f"pairs[{k}]").explanations

    batcher = Batcher(explain, config.batch_size, config.batch_wait_ms / 1000, config.queue_size)
    batcher.start()
    state.batcher = batcher
    logger.info("pepler: %s loaded, ready", config.run)


def _history(config: ServeConfig) -> list[Any]:
    from pepler_cli.generation.cold_start import read_history

    return read_history(config.history) if config.history is not None else []


def read_token(path: Path) -> str:
    """The API token: the file's text without surrounding whitespace, at least 16 characters."""
    token = read_user_text(Path(path), "token file").strip()
    if len(token) < MIN_TOKEN_CHARACTERS or any(c.isspace() for c in token):
        raise UsageError(
            f"--token-file {path}: the token must be one word of at least {MIN_TOKEN_CHARACTERS} characters"
        )
    return token


def check_address(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token: anyone who can reach the port could use the run."""
    if token is not None or _loopback(host):
        return
    raise UsageError(
        f"--host {host}: not a loopback address; serving beyond this machine needs an API token (--token-file)"
    )


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def run_info(config: ServeConfig, manifest: dict[str, Any]) -> dict[str, Any]:
    """``GET /info``: what the run is (model, backbone, strategy, training data) and the server's limits."""
    run_config = manifest.get("config") or {}
    dataset = manifest.get("dataset") or {}
    return {
        "pepler_version": _version(),
        "run": {"path": str(Path(config.run).resolve()), "name": manifest.get("name")},
        "model": run_config.get("model") or "pepler",
        **{
            key: run_config.get(key)
            for key in ("backbone", "prompt", "strategy", "rating_head", "feature_hint")
        },
        "training_data": {key: dataset.get(key) for key in ("name", "fingerprint", "split")},
        "limits": {
            "max_pairs": config.max_pairs,
            "max_body_bytes": config.max_body_bytes,
            "batch_size": config.batch_size,
            "batch_wait_ms": config.batch_wait_ms,
            "queue_size": config.queue_size,
            "request_timeout": config.request_timeout,
        },
    }


def _version() -> str:
    import pepler_cli

    return pepler_cli.__version__


def _graceful_server(config: Any) -> Any:
    """A uvicorn server (built here: uvicorn is an optional extra) that exits 0 after SIGTERM."""
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a SIGTERM after which every request was answered ends the process with 0:
        uvicorn raises the captured signal again once it has shut down, which would end it with 143."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    return Server(config)
