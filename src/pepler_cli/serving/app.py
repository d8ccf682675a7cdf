"""The HTTP API of ``pepler serve``: routes, request and response shapes, limits and the API token.

- ``POST /explain`` ``{"pairs": [{"user", "item", "feature"?}], "options": {...}?}`` → one explanation per pair
  (and the predicted rating, the hint, whether it was cold); ``options`` are decoding options of ``generate``
  (:data:`REQUEST_OPTIONS`), the server's own by default.
- ``GET /healthz``: the process answers; ``GET /readyz``: the run is loaded (503 until then); ``GET /info``: the
  run's manifest summary and the server's limits. OpenAPI docs at ``/docs``.

Every refusal is JSON: a malformed body, an unknown field or id (422, each ``detail`` entry's ``loc`` names the
field), a body over ``--max-body-bytes`` (413), a request without the token (401), a full queue or a run not
loaded yet (503 with Retry-After), a request not explained within ``--request-timeout`` (504).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, create_model

import pepler_cli
from pepler_cli.config import ServeConfig
from pepler_cli.data.pairs import Pair
from pepler_cli.generation.decode import DecodeOptions
from pepler_cli.generation.explainer import Explainer, Explanation
from pepler_cli.serving.batcher import Batcher, QueueFull

# What a request may choose of the decoding; the rest (cold start, hints, device) is the server's.
REQUEST_OPTIONS = (
    "max_tokens", "decoding", "beams", "length_penalty", "beam_groups", "diversity_penalty", "no_repeat_ngram",
    "repetition_penalty", "top_k", "top_p", "temperature", "seed",
)  # fmt: skip
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered without the token: probes of an orchestrator
RETRY_AFTER_SECONDS = 1
UNHINTED = "the run was trained without feature hints and cannot be told which feature to explain"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PairIn(BaseModel):
    """One pair to explain; ids as in the dataset (numbers are read as their text)."""

    model_config = ConfigDict(extra="forbid")

    user: StrictStr | StrictInt
    item: StrictStr | StrictInt
    feature: StrictStr | None = Field(None, min_length=1, description="explain the pair by this feature")

    def pair(self) -> Pair:
        return Pair(str(self.user), str(self.item), self.feature)


OptionsIn = create_model(  # every decoding option of ExplainingConfig, optional: the server's when absent
    "OptionsIn",
    __config__=ConfigDict(extra="forbid"),
    **{name: (ServeConfig.model_fields[name].annotation | None, None) for name in REQUEST_OPTIONS},  # type: ignore[call-overload]
)


class ExplanationOut(BaseModel):
    user: str
    item: str
    explanation: str | None = None  # None: skipped (see ``skipped``)
    predicted_rating: float | None = None
    hint: str | None = None  # the feature the prompt carried
    cold: Literal["user", "item", "user+item"] | None = None
    skipped: str | None = None  # why the pair got no explanation (--unknown skip)


class ExplainResponse(BaseModel):
    model: str
    explanations: list[ExplanationOut]


@dataclass
class ServerState:
    """What the routes share: the options, the token, and the run once it is loaded."""

    config: ServeConfig
    token: str | None = None
    explainer: Explainer | None = None
    batcher: Batcher[Explanation | None] | None = None
    load_error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def build_app(state: ServerState) -> FastAPI:
    """The FastAPI application of ``state`` (its run loaded by server.py, which sets ``state.explainer``)."""
    config = state.config
    request_model = create_model(
        "ExplainRequest",
        __config__=ConfigDict(extra="forbid"),
        pairs=(list[PairIn], Field(min_length=1, max_length=config.max_pairs)),
        options=(OptionsIn | None, None),  # type: ignore[operator]
    )
    app = FastAPI(title="pepler", version=pepler_cli.__version__, summary="Explanations for recommendations")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Any, error: RequestValidationError) -> JSONResponse:
        # Each problem's place and reason, without echoing the input back (it may be a megabyte).
        detail = [{key: problem.get(key) for key in ("loc", "msg", "type")} for problem in error.errors()]
        return JSONResponse({"detail": detail}, 422)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if state.batcher is not None:
            return JSONResponse({"status": "ready"})
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "detail": state.load_error}, 503, _retry())

    @app.get("/info")
    async def info() -> dict[str, Any]:
        batcher = state.batcher
        queue = None
        if batcher is not None:
            queue = {"waiting": batcher.waiting, "decoding": batcher.decoding, **vars(batcher.stats)}
        if queue is not None:
            queue["sizes"] = dict(queue["sizes"])
        return {**state.info, "ready": batcher is not None, "queue": queue}

    async def explain(body: Any) -> Any:
        if state.batcher is None or state.explainer is None:
            return JSONResponse({"detail": "the run is still loading"}, 503, _retry())
        pairs = [pair.pair() for pair in body.pairs]
        options = _options(config, body.options, state.explainer)
        if isinstance(options, JSONResponse):
            return options
        problems = [(p.position, p.field, p.message) for p in state.explainer.problems(pairs)]
        if not state.explainer.hinted:  # a feature asked of a run that cannot be told one is never ignored
            problems += [(k, "feature", UNHINTED) for k, pair in enumerate(pairs) if pair.feature is not None]
        if problems:
            detail = [
                {"loc": ["body", "pairs", position, name], "msg": message, "type": "unusable_pair"}
                for position, name, message in sorted(problems)
            ]
            return JSONResponse({"detail": detail}, 422)
        try:
            future = state.batcher.submit(pairs, options)
        except QueueFull:
            waiting = state.batcher.waiting
            message = f"the queue is full ({waiting} requests waiting): retry later"
            return JSONResponse({"detail": message}, 503, _retry())
        try:
            explained = await asyncio.wait_for(asyncio.shield(future), config.request_timeout)
        except asyncio.TimeoutError:
            future.cancel()  # the batcher leaves it out if it has not started on it
            message = f"not explained within {config.request_timeout:g} s (--request-timeout)"
            return JSONResponse({"detail": message}, 504)
        return {
            "model": state.info.get("model"),
            "explanations": [_out(pair, e) for pair, e in zip(pairs, explained)],
        }

    # The request's model is made for this server's --max-pairs: given to FastAPI as the parameter's type (an
    # annotation in the source would be a string naming a local, which FastAPI cannot resolve).
    explain.__annotations__["body"] = request_model
    app.post("/explain", response_model=ExplainResponse)(explain)
    return app


def _options(
    config: ServeConfig, given: BaseModel | None, explainer: Explainer
) -> DecodeOptions | JSONResponse:
    """The decoding options of a request: the server's, with those it gives, checked as the command line's."""
    chosen = given.model_dump(exclude_none=True) if given is not None else {}
    try:
        merged = ServeConfig.model_validate({**config.model_dump(), **chosen})
    except ValidationError as error:
        detail = [
            {"loc": ["body", "options", *problem["loc"]], "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        return JSONResponse({"detail": detail}, 422)
    return DecodeOptions.from_config(merged, explainer.run.max_tokens)


def _out(pair: Pair, explanation: Explanation | None) -> dict[str, Any]:
    if explanation is None:
        return {
            "user": pair.user,
            "item": pair.item,
            "skipped": "a user or item the run never saw in training",
        }
    return {
        "user": pair.user,
        "item": pair.item,
        "explanation": explanation.generated,
        "predicted_rating": explanation.predicted_rating,
        "hint": explanation.hint,
        "cold": explanation.cold,
    }


def _retry() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class Guard:
    """An ASGI wrapper in front of the application: the API token and the body size, checked before FastAPI
    reads anything (a request body is read whole, up to ``max_body_bytes``, then handed on)."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            headers = {"WWW-Authenticate": "Bearer"}
            await _answer(send, 401, "missing or wrong API token (Authorization: Bearer ...)", headers)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _answer(send, 413, f"the body is over {self.max_body_bytes} bytes (--max-body-bytes)")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await _answer(send, 413, f"the body is over {self.max_body_bytes} bytes (--max-body-bytes)")
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    def _authorized(self, scope: Scope) -> bool:
        assert self.token is not None
        given = _header(scope, b"authorization") or ""
        scheme, _, credentials = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token.encode()
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the client's disconnect

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
