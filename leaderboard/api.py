"""The JSON API's request bodies (pydantic): what a client may send to ``leaderboard serve``, with the size limits
of every field. Shared by the server's endpoints and the UI's Submit form."""

from typing import Any

from pydantic import BaseModel, Field


class EvalRequest(BaseModel):
    name: str = Field(max_length=128)
    base_model: str = Field(max_length=1024)
    adapter: str | None = Field(default=None, max_length=1024)
    revision: str | None = Field(default=None, max_length=64)


class Claim(BaseModel):
    worker: str = Field(max_length=200)


class Heartbeat(BaseModel):
    claim: str = Field(max_length=64)
    log: str = Field(default="", max_length=100_000)


class Finish(BaseModel):
    claim: str = Field(max_length=64)
    files: dict[str, str]
    provenance: dict[str, Any] | None = None
    environment: dict[str, Any] = Field(default_factory=dict)


class Fail(BaseModel):
    claim: str | None = Field(default=None, max_length=64)
    error: str = Field(max_length=10_000)


PUBLIC_JOB_FIELDS = ("id", "name", "base_model", "adapter", "revision", "state", "attempts", "error", "created_at",
                     "updated_at", "log")  # fmt: skip
