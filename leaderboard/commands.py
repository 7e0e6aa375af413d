"""``m2v-bench leaderboard ...``: the subcommands, wired by :func:`add_parser` (``m2v_bench.cli`` calls it once)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from m2v_bench.atomic import check_folder_target
from m2v_bench.data_dir import data_dir
from m2v_bench.errors import M2VError
from m2v_bench.leaderboard import BOARDS, OFFICIAL_TASKS
from m2v_bench.leaderboard.store import Store

# The commands import the rest of the leaderboard (pandas, pydantic, FastAPI, Gradio, httpx) in their bodies, for
# start-up time: `m2v-bench --help` and every other command must not pay for them.


def _store(args):
    return Store(args.db)


def cmd_submit(args: argparse.Namespace) -> int:
    from m2v_bench.leaderboard.submit import describe, store_submission, verify_submission  # start-up: see above

    describe(args.checkpoint)  # a bad provenance is refused before the database is opened (or created)
    # An existing --db is checked first (a file of another application is named before any verification); a new
    # one is made only once the submission is verified, so a bad input leaves no empty database behind.
    store = _store(args) if args.db.exists() or args.db.is_symlink() else None
    try:
        submission, rows, predictions = verify_submission(args.checkpoint, args.results,
                                                          args.data_dir or data_dir(), name=args.name)  # fmt: skip
        store = store or _store(args)
        rows = store_submission(store, submission, rows, predictions, replace=args.replace)
    finally:
        if store is not None:
            store.close()
    for row in rows:
        print(
            f"{row['task']}: n={row['n']} test set {row['test_set']} macro-F1 {row['macro_f1']:.3f} "
            f"[{row['macro_f1_low']:.3f}, {row['macro_f1_high']:.3f}] acc {row['accuracy']:.3f} (self-reported)"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from m2v_bench.leaderboard import views  # start-up time: see above

    store = _store(args)
    tables = {"substitution": [views.substitution(store, args.board)],
              "augmentation": [views.augmentation(store, args.board)],
              "ranking": views.ranking(store, args.board)}[args.view]  # fmt: skip
    for table in tables:
        if args.format != "markdown":
            print(f"% {table.title}" if args.format == "latex" else f"# {table.title}")
        print(views.render(table, args.format))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from m2v_bench.leaderboard.site import build  # start-up time: see above

    check_folder_target(args.out)
    pages = build(_store(args), args.out)
    print(f"wrote {len(pages)} pages to {args.out} (open {args.out / 'index.html'})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    store = _store(args)
    current = {s.name: s for s in store.submissions()}.get(args.name)
    versions = store.history(args.name)
    if current is None and not versions:
        print(f"no submission named {args.name!r}")
        return 1
    for old in versions:
        tasks = ", ".join(f"{r['task']} {r['macro_f1']:.3f}" for r in old["results"])
        print(f"version {old['version']} ({old['status']}, replaced {old['replaced_at']}): {tasks}")
    if current is not None:
        print(f"version {current.version} ({current.status}, current)")
    return 0


TOKEN_ENV = "M2V_LEADERBOARD_TOKEN"


def cmd_workers(args: argparse.Namespace) -> int:
    """Admin: one token per worker (only its hash is stored), revocation, the list."""
    from m2v_bench.leaderboard.submit import check_name  # start-up time: see above

    if args.action != "list" and not args.name:
        raise M2VError(f"leaderboard workers {args.action}: give the worker's name")
    if args.action == "add" and args.name.lower() == "admin":
        raise M2VError("leaderboard workers add: 'admin' names the server's own token; choose another name")
    store = _store(args)
    try:
        if args.action == "add":
            token = store.add_worker(check_name(args.name))
            print(token)  # stdout: the one place it is shown
            print(f"worker {args.name!r} added; give it this token (--token-file); it is not stored, only its hash",
                  file=sys.stderr)  # fmt: skip
        elif args.action == "revoke":
            moved = store.revoke_worker(args.name, args.note)
            print(f"worker {args.name!r} revoked; {len(moved)} row(s) it ran or audited moved out of the verified "
                  "tables" + (f": {', '.join(moved)}" if moved else ""))  # fmt: skip
        else:
            for worker in store.workers():
                state = f"revoked {worker['revoked_at']}: {worker['note']}" if worker["revoked_at"] else "active"
                flag = f"\tflagged: {worker['flag']}" if worker["flag"] else ""
                print(f"{worker['name']}\tadded {worker['created_at']}\t{state}{flag}")
    finally:
        store.close()
    return 0


def _token(args) -> str:

    if args.token_file is not None:
        return args.token_file.read_text(encoding="utf-8").strip()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise M2VError(f"no worker token: pass --token-file FILE or set ${TOKEN_ENV}")
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    from m2v_bench.leaderboard.server import serve  # start-up time: see above
    from m2v_bench.leaderboard.service import Config  # start-up time: see above

    config = Config(db=args.db, data_dir=args.data_dir or data_dir(), model_dirs=args.model_dir, token=_token(args),
                    lease_s=args.lease_s, rate_limit=args.rate_limit, rate_window_s=args.rate_window_s,
                    audit=args.audit)  # fmt: skip
    print(f"serving the leaderboard on http://{args.host}:{args.port}/ (API under /api, UI under /ui)")
    serve(config, args.host, args.port, ui=not args.no_ui, trusted_proxies=args.trusted_proxy)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from m2v_bench.leaderboard.worker import Worker, WorkerConfig  # start-up time: see above

    config = WorkerConfig(server=args.server, token=_token(args), data_dir=args.data_dir or data_dir(),
                          work_dir=args.work_dir, tasks=tuple(args.tasks.split(",")), device=args.device,
                          dtype=args.dtype, batch_size=args.batch_size, frames=args.frames,
                          poll_s=args.poll_s)  # fmt: skip
    done = Worker(config).run(once=args.once)
    print(f"worker {config.worker_id}: {done} job(s) run")
    return 0


def add_parser(sub) -> None:
    top = sub.add_parser(
        "leaderboard",
        help="submit results, show tables, build the site",
        description="The leaderboard: verified submissions, the paper's tables, a static site.",
    )
    top.add_argument(
        "--db",
        type=Path,
        default=Path(os.environ.get("M2V_LEADERBOARD_DB", "leaderboard.sqlite")),
        help="SQLite file (default: $M2V_LEADERBOARD_DB or ./leaderboard.sqlite)",
    )
    steps = top.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser("submit", help="verify and store a checkpoint's lmms-eval results (self-reported)")
    p.add_argument("checkpoint", help="adapter folder (with m2v_provenance.json) or base model (= No-FT)")
    p.add_argument("--results", type=Path, required=True, help="lmms-eval --output_path folder (with --log_samples)")
    p.add_argument("--name", default=None, help="submission name (default: the checkpoint folder's name)")
    p.add_argument("--data-dir", type=Path, default=None, help="prepared manifests (default: $M2V_DATA_DIR)")
    p.add_argument("--replace", action="store_true",
                   help="a taken name: store this as its next version (the old one stays in the history)")  # fmt: skip
    p.set_defaults(func=cmd_submit)
    p = steps.add_parser("show", help="print a view")
    p.add_argument("--view", choices=["substitution", "augmentation", "ranking"], default="substitution")
    p.add_argument("--format", choices=["markdown", "csv", "latex"], default="markdown")
    p.add_argument("--board", choices=BOARDS, default="paper",
                   help="paper: the paper's test sets (default); sample: synthetic or custom test sets")  # fmt: skip
    p.set_defaults(func=cmd_show)
    p = steps.add_parser("build", help="write the static HTML site")
    p.add_argument("out", type=Path)
    p.set_defaults(func=cmd_build)
    p = steps.add_parser("workers", help="admin: a token per worker (add), revocation (revoke), the list")
    p.add_argument("action", choices=["add", "revoke", "list"])
    p.add_argument("name", nargs="?", default=None, help="the worker's name (add, revoke)")
    p.add_argument("--note", default="revoked by an admin", help="revoke: why (shown with each row moved out)")
    p.set_defaults(func=cmd_workers)
    p = steps.add_parser("history", help="the versions of a submission name")
    p.add_argument("name")
    p.set_defaults(func=cmd_history)
    p = steps.add_parser("serve", help="the web app: Gradio UI + the JSON API for workers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the leaderboard's prepared data, to verify against (default: $M2V_DATA_DIR)")  # fmt: skip
    p.add_argument("--model-dir", type=Path, action="append", default=[],
                   help="a folder whose models/adapters requests may name (repeatable; hub ids: always)")  # fmt: skip
    p.add_argument("--token-file", type=Path, default=None, help=f"worker/admin token (default: ${TOKEN_ENV})")
    p.add_argument("--lease-s", type=float, default=600.0, help="a job's lease; renewed by its worker's heartbeat")
    p.add_argument("--rate-limit", type=int, default=10, help="requests per client per --rate-window-s")
    p.add_argument("--rate-window-s", type=float, default=3600.0)
    p.add_argument("--no-ui", action="store_true", help="the JSON API only")
    p.add_argument("--audit", action="store_true",
                   help="audit mode: a worker's run is verified only once a second worker's re-run of a random "
                        "sample of its documents agrees with it")  # fmt: skip
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                   help="a reverse proxy whose X-Forwarded-For names the client (repeatable; default: none, the "
                        "connection's own address is the client)")  # fmt: skip
    p.set_defaults(func=cmd_serve)
    p = steps.add_parser("worker", help="claim queued requests from a server and evaluate them with lmms-eval")
    p.add_argument("--server", required=True, help="the leaderboard's URL, e.g. http://lb.example:7860")
    p.add_argument("--token-file", type=Path, default=None, help=f"worker token (default: ${TOKEN_ENV})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the leaderboard's prepared data (default: $M2V_DATA_DIR)")  # fmt: skip
    p.add_argument("--work-dir", type=Path, default=Path("leaderboard-work"), help="lmms-eval output folders")
    p.add_argument("--tasks", default=",".join(OFFICIAL_TASKS))
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--dtype", default="auto", help="the m2v model's dtype (auto, bfloat16, float16, float32)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--frames", type=int, default=None, help="frames per video (default: the m2v model's)")
    p.add_argument("--poll-s", type=float, default=5.0, help="seconds between claims when the queue is empty")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.set_defaults(func=cmd_worker)
