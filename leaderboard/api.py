"""The JSON API's request bodies (pydantic): what a client may send to ``leaderboard serve``, with the size limits
of every field. Shared by the server's endpoints and the UI's Submit form. A field that breaks its limits is a 422
naming it: names and references hold no control characters, texts no NUL."""

from typing import Any

from pydantic import BaseModel, Field

ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
"""A name, reference or id: one line, no control characters (NUL included)."""
MODEL_REF = r"^[^\x00-\x1f\x7f,]*$"
"""A model reference or revision: one line and no comma (lmms-eval splits its --model_args on commas, so a comma
would let a request add model arguments of its own on the worker)."""
TEXT = r"^[^\x00]*$"
"""A log or an error message: lines of text, no NUL."""


class EvalRequest(BaseModel):
    name: str = Field(max_length=128, pattern=ONE_LINE)
    base_model: str = Field(max_length=1024, pattern=MODEL_REF)
    adapter: str | None = Field(default=None, max_length=1024, pattern=MODEL_REF)
    revision: str | None = Field(default=None, max_length=64, pattern=MODEL_REF)


class Claim(BaseModel):
    worker: str = Field(max_length=200, pattern=ONE_LINE)


class Heartbeat(BaseModel):
    claim: str = Field(max_length=64, pattern=ONE_LINE)
    log: str = Field(default="", max_length=100_000, pattern=TEXT)


class Finish(BaseModel):
    claim: str = Field(max_length=64, pattern=ONE_LINE)
    files: dict[str, str]
    provenance: dict[str, Any] | None = None
    environment: dict[str, Any] = Field(default_factory=dict)


class Fail(BaseModel):
    claim: str | None = Field(default=None, max_length=64, pattern=ONE_LINE)
    error: str = Field(max_length=10_000, pattern=TEXT)
