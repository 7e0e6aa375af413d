"""``m2v-bench leaderboard serve``: the FastAPI app -- the JSON API that workers and the UI use, with the Gradio UI
(``ui.py``) mounted at ``/ui``. Nothing starts at import: :func:`create_app` builds an app from a
:class:`~m2v_bench.leaderboard.service.Config`, :func:`serve` runs it with uvicorn.

- Public: ``GET /api/tables/{substitution|augmentation|ranking}?board=paper|sample``, ``GET /api/submissions``,
  ``GET /api/jobs``,
  ``GET /api/jobs/{id}``, ``POST /api/requests`` (rate-limited per client).
- Workers and admins (``Authorization: Bearer <token>``, else 401): ``POST /api/jobs/claim``,
  ``/api/jobs/{id}/heartbeat``, ``/api/jobs/{id}/finish``, ``/api/jobs/{id}/fail``; ``GET /api/admin/jobs/{id}``
  (the whole job: its log, client and worker).

Public endpoints show no client address, worker, log or server path (``service.public_job``). Bodies are limited
before they are read (:class:`BodyLimit`): 64 KiB on public endpoints; on the token's endpoints the token is
checked first, then 1 MiB (``finish``: :data:`FINISH_BODY_LIMIT`). Proxy headers count only from the
``--trusted-proxy`` addresses (none by default).

One process owns the database (SQLite, WAL) and serialises its writes with a lock. (No ``from __future__ import
annotations`` here: FastAPI reads the endpoints' annotations, which name classes imported inside ``create_app``.)
"""

import asyncio
import hmac
import json
import logging
import re
import threading
from typing import Annotated

from m2v_bench.errors import M2VError
from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.api import Claim, EvalRequest, Fail, Finish, Heartbeat
from m2v_bench.leaderboard.service import (
    MAX_UPLOAD,
    Config,
    RateLimiter,
    RequestError,
    check_request,
    make_request,
    public_job,
    public_submission,
    public_text,
    verify_upload,
)
from m2v_bench.leaderboard.store import ADMIN, Store
from m2v_bench.leaderboard.ui import make_ui

logger = logging.getLogger(__name__)

PUBLIC_BODY_LIMIT = 64 * 1024
TOKEN_BODY_LIMIT = 1024 * 1024
FINISH_BODY_LIMIT = 2 * MAX_UPLOAD + TOKEN_BODY_LIMIT
"""A ``finish`` body: the uploaded files as JSON strings (escaping can double their size) and the rest."""
FINISH_UPLOADS = 4
"""``finish`` bodies read at once (the others wait): the server holds at most this many in memory; one worker
uploads one at a time (429 for a second), so that no worker can hold them all."""
BODY_TIMEOUT_S = 30.0
FINISH_BODY_TIMEOUT_S = 600.0
"""A body must arrive whole within these (``finish``: the second), else 408."""
HUB_LOOKUPS = 4
"""Requests checked against the hub at once (each may wait seconds for it); more get 503."""
MAX_JOB_ID = 2**63 - 1
"""SQLite's largest integer: a larger job id in a path is a 422, not an overflow."""
_TOKEN_PATH = re.compile(r"/api/(?:jobs/claim|jobs/[^/]+/(?:heartbeat|finish|fail)|admin/.*)")


def _bearer(scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            return given.strip() if scheme.lower() == "bearer" else None
    return None


class BodyLimit:
    """ASGI middleware: a request body over its limit is refused with 413 before it is read whole, and a worker or
    admin endpoint without a valid token gets its 401 before its body is read at all. The caller's identity (the
    registered worker, or ``admin``) goes to ``request.state.identity``."""

    def __init__(self, app, identify):
        self.app, self.identify = app, identify
        self._finishes = asyncio.Semaphore(FINISH_UPLOADS)
        self._uploading: set[str] = set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if _TOKEN_PATH.fullmatch(path):
            identity = self.identify(_bearer(scope))
            if identity is None:
                return await _refuse(send, 401, "a worker/admin token is required (a revoked one is refused)",
                                     {"www-authenticate": "Bearer"})  # fmt: skip
            scope.setdefault("state", {})["identity"] = identity
            limit = FINISH_BODY_LIMIT if path.endswith("/finish") else TOKEN_BODY_LIMIT
        else:
            limit = PUBLIC_BODY_LIMIT
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _refuse(send, 413, f"request body over {limit} bytes")
        if limit == FINISH_BODY_LIMIT:  # at most FINISH_UPLOADS finish bodies in memory at once, one per worker
            identity = scope["state"]["identity"]
            if identity in self._uploading:
                return await _refuse(send, 429, f"{identity} is sending another finish; one at a time")
            self._uploading.add(identity)
            try:
                async with self._finishes:
                    return await self._read_then_call(scope, receive, send, limit, FINISH_BODY_TIMEOUT_S)
            finally:
                self._uploading.discard(identity)
        return await self._read_then_call(scope, receive, send, limit, BODY_TIMEOUT_S)

    async def _read_then_call(self, scope, receive, send, limit: int, timeout_s: float):
        """Read the body whole (at most ``limit`` bytes, within ``timeout_s``: a client that sends a byte a minute
        holds no connection open for ever), then call the app with it."""
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + timeout_s
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                return await _refuse(send, 408, f"request body not received within {timeout_s:.0f} s")
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _refuse(send, 413, f"request body over {limit} bytes")
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)


async def _refuse(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Leaderboard:
    """The server's state: one store (the single writer), its lock, the rate limiter."""

    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.db, threads=True)
        self.lock = threading.RLock()
        self.limiter = RateLimiter(config.rate_limit, config.rate_window_s)
        self._tables: dict[tuple, bytes] = {}
        self._tokens = Store(config.db, threads=True)  # the middleware's own connection: token look-ups only
        self.hub_lookups = threading.BoundedSemaphore(HUB_LOOKUPS)

    def identify(self, token: str | None) -> str | None:
        """Who a bearer token is: ``admin`` (the server's token), a registered unrevoked worker, or None."""
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self.config.token.encode()):
            return ADMIN
        return self._tokens.worker_for_token(token)

    def _generation(self) -> tuple[int, int]:
        """Changes since the last read: this connection's writes (``total_changes``) and other processes' commits
        (``PRAGMA data_version``, e.g. a CLI ``submit``)."""
        return self.store.db.total_changes, self.store.db.execute("PRAGMA data_version").fetchone()[0]

    def request(self, body: EvalRequest, client: str) -> int:
        if not self.limiter.allow(client):
            raise RateLimited(f"too many requests from {client}: at most {self.config.rate_limit} per "
                              f"{self.config.rate_window_s:.0f} s")  # fmt: skip
        if not self.hub_lookups.acquire(blocking=False):
            raise Busy(f"{HUB_LOOKUPS} requests are being checked against the hub now; try again in a minute")
        try:  # outside the database lock: it may read the hub
            checked = check_request(self.config, body.name, body.base_model, body.adapter, body.revision)
        finally:
            self.hub_lookups.release()
        with self.lock:
            return make_request(self.store, checked, client)

    def jobs(self) -> list[dict]:
        """The queue as the public sees it (:func:`~m2v_bench.leaderboard.service.public_job`)."""
        with self.lock:
            self.store.requeue_expired()
            return [public_job(j) for j in self.store.jobs(with_log=False)]

    def table(self, view: str, board: str) -> list[dict]:
        return json.loads(self.table_json(view, board))

    def table_json(self, view: str, board: str) -> bytes:
        """A view as JSON text, recomputed only when the database changed since it was last computed."""
        with self.lock:
            key = (view, board, *self._generation())
            if key in self._tables:
                return self._tables[key]
            if view == "ranking":
                tables = views.ranking(self.store, board)
            else:
                tables = [{"substitution": views.substitution, "augmentation": views.augmentation}[view](
                    self.store, board)]  # fmt: skip
            result = json.dumps([{"title": t.title, "columns": list(t.frame.columns),
                                  "rows": t.frame.to_dict(orient="records"),
                                  "notes": [public_text(n) for n in t.notes]} for t in tables],
                                default=str).encode()  # fmt: skip
            self._tables = {k: v for k, v in self._tables.items() if k[2:] == key[2:]} | {key: result}
            return result


class RateLimited(M2VError):
    pass


class Busy(M2VError):
    pass


def create_app(config: Config, ui: bool = True):
    """The FastAPI app (and the Gradio UI at /ui unless ``ui=False``)."""
    from fastapi import Depends, FastAPI, HTTPException, Request, Response  # imported here for start-up time
    from fastapi import Path as PathParameter
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import RedirectResponse  # imported here for start-up time

    if not config.token:
        raise M2VError("the leaderboard server needs a worker token (--token-file or $M2V_LEADERBOARD_TOKEN)")
    lb = Leaderboard(config)
    app = FastAPI(title="m2v-bench leaderboard", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.leaderboard = lb
    app.add_middleware(BodyLimit, identify=lb.identify)
    JobId = Annotated[int, PathParameter(ge=1, le=MAX_JOB_ID)]

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError):
        """FastAPI's 422, written as ASCII JSON: the input it echoes may hold a lone surrogate (``"\\ud800"`` in the
        request's JSON), which UTF-8 cannot encode (FastAPI's own handler answered 500)."""
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        body = json.dumps({"detail": errors}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    def known(job_id: int) -> dict:
        with lb.lock:
            job = lb.store.job(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def authorized(request: Request) -> str:
        """The caller's identity, which :class:`BodyLimit` checked before the body was read."""
        identity = getattr(request.state, "identity", None)
        if identity is None:
            raise HTTPException(401, "a worker/admin token is required", headers={"WWW-Authenticate": "Bearer"})
        return identity

    def admin(identity: Annotated[str, Depends(authorized)]) -> None:
        if identity != ADMIN:
            raise HTTPException(403, "the admin token is required")

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/ui/" if ui else "/api/docs")

    @app.get("/api/tables/{view}")
    def tables(view: str, board: str = "paper"):
        if view not in ("substitution", "augmentation", "ranking") or board not in ("paper", "sample"):
            raise HTTPException(404, "view: substitution, augmentation or ranking; board: paper or sample")
        return Response(lb.table_json(view, board), media_type="application/json")

    @app.get("/api/submissions")
    def submissions():
        """Every stored submission: status, version, provenance and (verified) the environment it ran in."""
        with lb.lock:
            return [public_submission(s) for s in lb.store.submissions()]

    @app.get("/api/jobs")
    def jobs():
        return lb.jobs()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: JobId):
        found = [j for j in lb.jobs() if j["id"] == job_id]
        if not found:
            raise HTTPException(404, f"no job {job_id}")
        return found[0]

    @app.get("/api/admin/jobs/{job_id}", dependencies=[Depends(admin)])
    def admin_job(job_id: JobId):
        """The whole job, for admins: its log, the client that requested it, the worker that ran it."""
        return {k: v for k, v in known(job_id).items() if k != "claim"}

    @app.post("/api/requests", status_code=201)
    def create_request(body: EvalRequest, request: Request):
        try:
            job_id = lb.request(body, client_of(request))
        except RateLimited as exc:
            raise HTTPException(429, str(exc)) from None
        except Busy as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from None
        except M2VError as exc:
            raise HTTPException(422, public_text(str(exc))) from None
        return {"id": job_id, "state": "PENDING"}

    @app.post("/api/jobs/claim")
    def claim(body: Claim, identity: Annotated[str, Depends(authorized)]):
        with lb.lock:
            job = lb.store.claim_job(body.worker, config.lease_s, identity)
        if job is None:
            return Response(status_code=204)
        return {k: job[k] for k in ("id", "claim", "name", "base_model", "adapter", "revision")} | {
            "lease_s": config.lease_s,
            "sample": json.loads(job["sample"]) if job["sample"] else None,
        }

    @app.post("/api/jobs/{job_id}/heartbeat", dependencies=[Depends(authorized)])
    def heartbeat(job_id: JobId, body: Heartbeat):
        known(job_id)
        with lb.lock:
            if not lb.store.heartbeat(job_id, body.claim, config.lease_s, body.log):
                raise HTTPException(409, "this claim is no longer held (lease expired or job done)")
        return {"lease_s": config.lease_s}

    @app.post("/api/jobs/{job_id}/finish")
    def finish(job_id: JobId, body: Finish, identity: Annotated[str, Depends(authorized)]):
        known(job_id)
        try:  # the lock is taken around each database step, not the verification (it may read the hub)
            stored = verify_upload(lb.store, config, job_id, body.claim, body.model_dump(), identity, lb.lock)
        except RequestError as exc:
            raise HTTPException(422, str(exc)) from None
        if not stored:
            raise HTTPException(409, "this claim is no longer held (lease expired or job done); nothing stored")
        return {"state": "FINISHED"}

    @app.post("/api/jobs/{job_id}/fail")
    def fail(job_id: JobId, body: Fail, identity: Annotated[str, Depends(authorized)]):
        """A worker fails the job it holds (its claim); only the admin may fail one without a claim."""
        known(job_id)
        if body.claim is None and identity != ADMIN:
            raise HTTPException(403, "fail: send the claim you hold (only the admin token fails a job without one)")
        with lb.lock:
            if not lb.store.fail_job(job_id, body.claim, body.error, by=identity):
                raise HTTPException(409, "this claim is no longer held")
        return {"state": "FAILED"}

    if ui:
        import gradio as gr  # imported here for start-up time

        app = gr.mount_gradio_app(app, make_ui(lb), path="/ui")
    return app


def serve(config: Config, host: str, port: int, ui: bool = True, trusted_proxies: list[str] = ()) -> None:
    import uvicorn  # imported here for start-up time

    uvicorn.run(create_app(config, ui=ui), host=host, port=port, log_level="info",
                **proxy_settings(trusted_proxies))  # fmt: skip


def proxy_settings(trusted_proxies: list[str]) -> dict:
    """uvicorn's proxy settings: X-Forwarded-For/-Proto are read only from ``trusted_proxies``. uvicorn's own
    default trusts them from 127.0.0.1, so any local client could pose as any address and escape the rate limit."""
    trusted = [address.strip() for address in trusted_proxies if address.strip()]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted) or None}
