"""The server's settings, declared once: defaults, help texts and the CLI flags come from here."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_choices_and_counts, setting


@dataclass
class ServeSettings:
    host: str = setting("127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    port: int = setting(8000, "Port to listen on.")
    max_batch_size: int = setting(32, "Most texts in one forward pass: concurrent requests are gathered up to this (1 turns micro-batching off).")
    max_wait_ms: float = setting(10.0, "Longest a forward pass waits for requests to join it, and only while it holds fewer than the last pass did (a lone client never waits; 0: never).")
    workers: int = setting(1, "Server processes, each with its own copy of the model.")
    max_body_bytes: int = setting(1_000_000, "Largest request body; larger gets HTTP 413.")
    max_texts: int = setting(256, "Most texts in one request; more gets HTTP 413.")
    max_chars: int = setting(20_000, "Most characters in one text; longer gets HTTP 413.")
    max_windows: int = setting(1024, "Most windows of the model's --max-length tokens in one request: a long text read in windows counts each of them, one that fits counts one; more gets HTTP 413.")

    def __post_init__(self):
        check_choices_and_counts(self, ("port", "max_batch_size", "workers", "max_body_bytes", "max_texts",
                                        "max_chars", "max_windows"))
