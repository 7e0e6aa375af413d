"""The leaderboard's Gradio UI, mounted at ``/ui`` on the FastAPI app (``server.py``), the way Hugging Face
leaderboard Spaces look: tabs for the paper's tables (with CIs, ``n`` and the test set), the ranking, the plots,
the request form, the queue and an About page. It reads and writes through the server's
:class:`~m2v_bench.leaderboard.server.Leaderboard` (one database writer)."""

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from m2v_bench.errors import M2VError
from m2v_bench.leaderboard.api import EvalRequest
from m2v_bench.leaderboard.service import public_text
from m2v_bench.leaderboard.site import plot_by_strategy, plot_scarcity
from m2v_bench.leaderboard.views import augmentation, escape_markdown, ranking, render, substitution

logger = logging.getLogger(__name__)

ABOUT = """
## m2v-bench leaderboard

Hateful-video detection with vision-language models, after *Cross-Modal Transfer from Memes to Videos* (Wang, Tan,
Lee, WWW 2025). The tables follow the paper's Table 3 (substitution: video, original-meme or re-annotated-meme
training data) and Table 4 (augmentation: video plus re-annotated memes). Published rows are the paper's.

**Metrics.** Accuracy, macro-F1 (with a 95% percentile-bootstrap CI over the test samples), F1, precision and
recall of the positive class; an answer the parser cannot map to a label counts as invalid. `n` is the number of
test samples, and the test set says which: `paper` (the paper's split, identified by content hash), `sample`
(synthetic) or `custom`. Rows are compared only on the same test set: sample/custom rows are on their own board.

**Verification.** A request (base model, optional LoRA adapter, display name) is queued; a leaderboard worker runs
lmms-eval itself (the `m2v` model, the official tasks, the leaderboard's own prepared data) and the server checks
its output (every test id and gold label, the test-set hash, every answer re-parsed, task/prompt/parser versions,
model_args) before storing it as **verified**, with the software versions, device and dtype. Uploaded logs
(`m2v-bench leaderboard submit`) go through the same checks but stay **self-reported**: listed below the verified
rows, never marked best, ranked apart. A name is never overwritten silently.
"""


def _frames(lb, view: str, board: str):
    tables = lb.table(view, board)
    frames = []
    for table in tables:
        frame = pd.DataFrame(table["rows"], columns=table["columns"]).astype(object)
        frames.append((table["title"], frame.where(frame.notna(), "-"), table["notes"]))
    return frames


def make_ui(lb):
    """The Gradio Blocks of the leaderboard (not launched: the server mounts them)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr  # imported here for start-up time

    def table_values():
        values = []
        for board in ("paper", "sample"):
            for view in ("substitution", "augmentation"):
                ((title, frame, notes),) = _frames(lb, view, board)
                values += [frame, "\n\n".join(escape_markdown(n) for n in notes)]
        return values

    def ranking_values(board):
        with lb.lock:
            tables = ranking(lb.store, board)
        blocks = [f"### {escape_markdown(t.title)}\n\n{render(t, 'markdown')}\n\n"
                  + "\n\n".join(escape_markdown(n) for n in t.notes) for t in tables]  # fmt: skip
        return "\n\n".join(blocks) or "No submission on this board yet."

    def plots():
        out = Path(tempfile.mkdtemp(prefix="m2v-lb-plots-"))
        with lb.lock:
            plot_by_strategy(substitution(lb.store), out / "substitution.png")
            plot_by_strategy(augmentation(lb.store), out / "augmentation.png")
            scarcity = plot_scarcity(lb.store, out / "scarcity.png")
        return str(out / "substitution.png"), str(out / "augmentation.png"), (
            str(out / "scarcity.png") if scarcity else None)  # fmt: skip

    def queue_values():

        jobs = lb.jobs()
        columns = ["id", "name", "state", "base_model", "adapter", "attempts", "updated_at", "error"]
        return pd.DataFrame([{k: j[k] for k in columns} for j in jobs], columns=columns).astype(object).fillna("-")

    def submit(name, base_model, adapter, revision, request: gr.Request):

        client = request.client.host if request and request.client else "unknown"
        try:
            body = EvalRequest(name=name, base_model=base_model, adapter=adapter or None, revision=revision or None)
            job_id = lb.request(body, client)
        except Exception as exc:  # shown to the user (no server path or address), never a traceback
            if not isinstance(exc, ValidationError | M2VError):
                logger.exception("the UI's request form")
            return f"Not queued: {escape_markdown(public_text(str(exc)))}", queue_values()  # escaped: user text
        return f"Queued as job {job_id}: PENDING", queue_values()

    with gr.Blocks(title="m2v-bench leaderboard", analytics_enabled=False) as demo:
        gr.Markdown("# m2v-bench leaderboard: hateful-video detection")
        with gr.Tabs():
            with gr.Tab("Tables 3 and 4", id="tables"):
                outputs = []
                for board, heading in (("paper", "The paper's test sets"),
                                       ("sample", "Sample data board (synthetic or custom test sets)")):  # fmt: skip
                    gr.Markdown(f"## {heading}")
                    for view in ("Substitution (Table 3)", "Augmentation (Table 4)"):
                        gr.Markdown(f"### {view}")
                        outputs += [gr.Dataframe(interactive=False, wrap=True, elem_id=f"{board}-{view[:5].lower()}"),
                                    gr.Markdown()]  # fmt: skip
                demo.load(table_values, outputs=outputs)
            with gr.Tab("Ranking", id="ranking"):
                board = gr.Radio(["paper", "sample"], value="paper", label="Board")
                ranking_text = gr.Markdown(elem_id="ranking")
                board.change(ranking_values, inputs=board, outputs=ranking_text)
                demo.load(ranking_values, inputs=board, outputs=ranking_text)
            with gr.Tab("Plots", id="plots"):
                images = [gr.Image(label="Substitution: macro-F1"), gr.Image(label="Augmentation: macro-F1"),
                          gr.Image(label="Data scarcity")]  # fmt: skip
                gr.Button("Draw").click(plots, outputs=images)
            with gr.Tab("Submit", id="submit"):
                gr.Markdown("Request an evaluation: the leaderboard runs it on its own data, stores it as verified.")
                name = gr.Textbox(label="Display name", elem_id="req-name")
                base = gr.Textbox(label="Base model (hub id or a folder the leaderboard serves)", elem_id="req-base")
                adapter = gr.Textbox(label="LoRA adapter (optional: hub id or folder)", elem_id="req-adapter")
                revision = gr.Textbox(label="Adapter revision (optional)", elem_id="req-revision")
                button = gr.Button("Submit", elem_id="req-submit")
                result = gr.Markdown(elem_id="req-result")
            with gr.Tab("Queue", id="queue"):
                queue = gr.Dataframe(interactive=False, elem_id="queue-table")
                gr.Button("Refresh", elem_id="queue-refresh").click(queue_values, outputs=queue)
                demo.load(queue_values, outputs=queue)
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT)
        button.click(submit, inputs=[name, base, adapter, revision], outputs=[result, queue])
    return demo
