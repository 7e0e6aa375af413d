"""``m2v-bench leaderboard serve``: the FastAPI app -- the JSON API that workers and the UI use, with the Gradio UI
(``ui.py``) mounted at ``/ui``. Nothing starts at import: :func:`create_app` builds an app from a
:class:`~m2v_bench.leaderboard.service.Config`, :func:`serve` runs it with uvicorn.

- Public: ``GET /api/tables/{substitution|augmentation|ranking}?board=paper|sample``, ``GET /api/submissions``,
  ``GET /api/jobs``,
  ``GET /api/jobs/{id}``, ``POST /api/requests`` (rate-limited per client).
- Workers and admins (``Authorization: Bearer <token>``, else 401): ``POST /api/jobs/claim``,
  ``/api/jobs/{id}/heartbeat``, ``/api/jobs/{id}/finish``, ``/api/jobs/{id}/fail``.

One process owns the database (SQLite, WAL) and serialises its writes with a lock. (No ``from __future__ import
annotations`` here: FastAPI reads the endpoints' annotations, which name classes imported inside ``create_app``.)
"""

import hmac
import json
import logging
import threading
from typing import Annotated

from m2v_bench.errors import M2VError
from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.api import PUBLIC_JOB_FIELDS, Claim, EvalRequest, Fail, Finish, Heartbeat
from m2v_bench.leaderboard.service import Config, RateLimiter, RequestError, make_request, verify_upload
from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.ui import make_ui

logger = logging.getLogger(__name__)


class Leaderboard:
    """The server's state: one store (the single writer), its lock, the rate limiter."""

    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.db, threads=True)
        self.lock = threading.RLock()
        self.limiter = RateLimiter(config.rate_limit, config.rate_window_s)
        self._tables: dict[tuple, bytes] = {}

    def _generation(self) -> tuple[int, int]:
        """Changes since the last read: this connection's writes (``total_changes``) and other processes' commits
        (``PRAGMA data_version``, e.g. a CLI ``submit``)."""
        return self.store.db.total_changes, self.store.db.execute("PRAGMA data_version").fetchone()[0]

    def request(self, body: EvalRequest, client: str) -> int:
        if not self.limiter.allow(client):
            raise RateLimited(f"too many requests from {client}: at most {self.config.rate_limit} per "
                              f"{self.config.rate_window_s:.0f} s")  # fmt: skip
        with self.lock:
            return make_request(self.store, self.config, body.name, body.base_model, body.adapter, body.revision,
                                client)  # fmt: skip

    def jobs(self) -> list[dict]:
        with self.lock:
            self.store.requeue_expired()
            return [{k: j[k] for k in PUBLIC_JOB_FIELDS} for j in self.store.jobs()]

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
                                  "rows": t.frame.to_dict(orient="records"), "notes": t.notes} for t in tables],
                                default=str).encode()  # fmt: skip
            self._tables = {k: v for k, v in self._tables.items() if k[2:] == key[2:]} | {key: result}
            return result


class RateLimited(M2VError):
    pass


def create_app(config: Config, ui: bool = True):
    """The FastAPI app (and the Gradio UI at /ui unless ``ui=False``)."""
    from fastapi import Depends, FastAPI, HTTPException, Request, Response  # imported here for start-up time
    from fastapi.responses import RedirectResponse  # imported here for start-up time
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # imported here for start-up time

    if not config.token:
        raise M2VError("the leaderboard server needs a worker token (--token-file or $M2V_LEADERBOARD_TOKEN)")
    lb = Leaderboard(config)
    app = FastAPI(title="m2v-bench leaderboard", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.leaderboard = lb
    bearer = HTTPBearer(auto_error=False)

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), config.token.encode()):
            raise HTTPException(401, "a worker/admin token is required", headers={"WWW-Authenticate": "Bearer"})

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
            return [{"name": s.name, "status": s.status, "version": s.version, "family": s.family,
                     "strategy": s.strategy, "target": s.target, "meme_source": s.meme_source,
                     "base_model": s.base_model, "provenance": s.provenance, "environment": s.environment}
                    for s in lb.store.submissions()]  # fmt: skip

    @app.get("/api/jobs")
    def jobs():
        return lb.jobs()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: int):
        found = [j for j in lb.jobs() if j["id"] == job_id]
        if not found:
            raise HTTPException(404, f"no job {job_id}")
        return found[0]

    @app.post("/api/requests", status_code=201)
    def create_request(body: EvalRequest, request: Request):
        try:
            job_id = lb.request(body, client_of(request))
        except RateLimited as exc:
            raise HTTPException(429, str(exc)) from None
        except M2VError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": job_id, "state": "PENDING"}

    @app.post("/api/jobs/claim", dependencies=[Depends(authorized)])
    def claim(body: Claim):
        with lb.lock:
            job = lb.store.claim_job(body.worker, config.lease_s)
        if job is None:
            return Response(status_code=204)
        return {k: job[k] for k in ("id", "claim", "name", "base_model", "adapter", "revision")} | {
            "lease_s": config.lease_s
        }

    @app.post("/api/jobs/{job_id}/heartbeat", dependencies=[Depends(authorized)])
    def heartbeat(job_id: int, body: Heartbeat):
        with lb.lock:
            if not lb.store.heartbeat(job_id, body.claim, config.lease_s, body.log):
                raise HTTPException(409, "this claim is no longer held (lease expired or job done)")
        return {"lease_s": config.lease_s}

    @app.post("/api/jobs/{job_id}/finish", dependencies=[Depends(authorized)])
    def finish(job_id: int, body: Finish):
        with lb.lock:
            try:
                stored = verify_upload(lb.store, config, job_id, body.claim, body.model_dump())
            except RequestError as exc:
                raise HTTPException(422, str(exc)) from None
        if not stored:
            raise HTTPException(409, "this claim is no longer held (lease expired or job done); nothing stored")
        return {"state": "FINISHED"}

    @app.post("/api/jobs/{job_id}/fail", dependencies=[Depends(authorized)])
    def fail(job_id: int, body: Fail):
        with lb.lock:
            if not lb.store.fail_job(job_id, body.claim, body.error):
                raise HTTPException(409, "this claim is no longer held")
        return {"state": "FAILED"}

    if ui:
        import gradio as gr  # imported here for start-up time

        app = gr.mount_gradio_app(app, make_ui(lb), path="/ui")
    return app


def serve(config: Config, host: str, port: int, ui: bool = True) -> None:
    import uvicorn  # imported here for start-up time

    uvicorn.run(create_app(config, ui=ui), host=host, port=port, log_level="info")
