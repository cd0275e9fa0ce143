"""Request limits: each has a default and a flag, and a request over one gets HTTP 413 with one line
naming it, while the server keeps serving."""

from __future__ import annotations

import json

from ..data.examples import unicode_fault
from ..errors import StellarError


class LimitExceeded(Exception):
    """A request over one of the limits (HTTP 413)."""


def check_inputs(texts: list[str], pairs: list[str] | None, texts_name: str, pairs_name: str, settings) -> None:
    if len(texts) > settings.max_texts:
        raise LimitExceeded(f"{texts_name}: {len(texts)} items; the limit is {settings.max_texts} per request "
                            "(--max-texts)")
    if pairs is not None and len(pairs) != len(texts):
        raise StellarError(f"{pairs_name}: {len(pairs)} items for {len(texts)} {texts_name}; give one each")
    for name, values in ((texts_name, texts), (pairs_name, pairs or [])):
        for i, value in enumerate(values):
            if len(value) > settings.max_chars:
                raise LimitExceeded(f"{name}[{i}]: {len(value):,} characters; the limit is {settings.max_chars:,} "
                                    "(--max-chars)")
            if not value.strip():
                raise StellarError(f"{name}[{i}]: empty text")
            if fault := unicode_fault(value):
                raise StellarError(f"{name}[{i}]: {fault}")


def most_windows(texts: list[str], pairs: list[str] | None) -> int:
    """At most the windows these texts can take, from their sizes alone: a window holds at least one token
    its neighbour before it does not, and a token covers a byte or more, or is a word marker before one
    (sentencepiece's "▁"): at most two a byte. Requests under --max-windows by this need no counting."""
    return sum(2 * len(text.encode()) + 2 for text in texts + (pairs or []))


def check_windows(windows: int, texts_name: str, max_length: int, settings) -> None:
    """The forward passes a request costs: a long text read in windows counts each of them."""
    if windows > settings.max_windows:
        raise LimitExceeded(f"{texts_name}: {windows:,} windows of {max_length} tokens; the limit is "
                            f"{settings.max_windows:,} per request (--max-windows)")


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes gets 413 before it is parsed, whether its size is
    declared (Content-Length) or found while reading (chunked)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(scope, send)
        # the whole body read here, counted as it comes (chunked bodies declare no size): over the limit it
        # is refused before anything parses it; within it, the app reads it back from memory
        messages, received = [], 0
        while True:
            message = await receive()
            messages.append(message)
            received += len(message.get("body", b""))
            if received > self.limit:
                return await self.refuse(scope, send)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def refuse(self, scope, send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        body = json.dumps({"error": f"request body over {self.limit:,} bytes (--max-body-bytes)",
                           "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
