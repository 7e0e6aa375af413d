"""The static leaderboard site: one page per view (tables that sort on a header click), plots as PNG images, and
the Markdown/CSV/LaTeX tables beside them. ``m2v-bench leaderboard build OUT``."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.views import Table, augmentation, format_cell, on_board, ranking, render, substitution

PAGES = {"index.html": "Overview", "substitution.html": "Substitution", "augmentation.html": "Augmentation",
         "ranking.html": "Ranking per task", "sample.html": "Sample data board"}  # fmt: skip


def _environment():

    return Environment(
        loader=PackageLoader("m2v_bench.leaderboard", "templates"),
        autoescape=select_autoescape(default=True),  # every value is escaped: names come from submitters
        undefined=StrictUndefined,
    )


def table_context(table: Table, table_id: str) -> dict:
    """A view as the page template shows it: formatted cells, best cells marked, published rows marked."""
    rows = []
    for i, row in enumerate(table.frame.itertuples(index=False)):
        columns = zip(table.frame.columns, row, strict=True)
        cells = [{"text": format_cell(value), "best": (i, column) in table.best} for column, value in columns]
        published = any(isinstance(v, str) and v.startswith("published") for v in row)
        self_reported = any(isinstance(v, str) and v.startswith("self-reported:") for v in row)
        rows.append({"cells": cells, "published": published, "self_reported": self_reported})
    return {"id": table_id, "title": table.title, "headers": list(table.frame.columns), "rows": rows,
            "notes": table.notes}  # fmt: skip


def page(title: str, **content) -> str:
    """One page of the site (``content``: intro paragraphs, tables, downloads, images, empty)."""
    context = {"intro": [], "tables": [], "downloads": None, "images": [], "empty": None, **content}
    return _environment().get_template("page.html").render(title=title, pages=PAGES, **context)


def plot_by_strategy(table: Table, out: Path) -> None:
    """Grouped bars: macro-F1 per (model, strategy, data) row, one group per target."""
    import matplotlib  # imported here for start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported here for start-up time

    columns = [c for c in table.frame.columns if c.endswith("M-F1")]
    rows = [r for _, r in table.frame.iterrows() if any(isinstance(r[c], float) for c in columns)]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows) + 2), 4))
    width = 0.8 / max(1, len(columns))
    for k, column in enumerate(columns):
        values = [r[column] if isinstance(r[column], float) else 0.0 for r in rows]
        ax.bar([i + k * width for i in range(len(rows))], values, width, label=column)
    ax.set_xticks([i + width * (len(columns) - 1) / 2 for i in range(len(rows))])
    labels = [f"{r['Model']}\n{r['Strategy']} {r['Fine-tune data']}" + ("*" if r["Source"].startswith("published")
              else "") for r in rows]  # fmt: skip
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("macro-F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(table.title.split(":")[0] + " (* = published)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def scarcity_points(store: Store, board: str = "paper") -> dict[tuple, list[tuple[float, float]]]:
    """(family, strategy, target, status) -> [(video fraction, macro-F1)] of the submissions trained on a share of the
    video split (rows whose fraction is not a number are left out)."""
    subs = {s.name: s for s in store.submissions() if isinstance(s.video_fraction, float)}
    points: dict[tuple, list] = {}
    for r in store.results():
        sub = subs.get(r["name"])
        if sub and r["task"] == f"m2v_{sub.target}" and on_board(r.get("test_set"), board):
            key = (sub.family, sub.strategy, sub.target, sub.status)
            points.setdefault(key, []).append((sub.video_fraction, float(r["macro_f1"])))
    return points


def plot_scarcity(store: Store, out: Path, board: str = "paper") -> bool:
    """macro-F1 against the share of video training data, when submissions with video_fraction < 1 exist."""
    points = scarcity_points(store, board)
    if not any(f < 1 for series in points.values() for f, _ in series):
        return False
    import matplotlib  # imported here for start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported here for start-up time

    fig, ax = plt.subplots(figsize=(6, 4))
    for (family, strategy, target, status), series in sorted(points.items()):
        series.sort()
        style = "-" if status == "verified" else ":"
        label = f"{family} {strategy} -> {target} ({status})"
        ax.plot([f for f, _ in series], [v for _, v in series], marker="o", linestyle=style, label=label)
    ax.set_xlabel("share of the video training split")
    ax.set_ylabel("macro-F1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def build(store: Store, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    sub, aug, ranks = substitution(store), augmentation(store), ranking(store)
    sample_tables = [substitution(store, "sample"), augmentation(store, "sample"), *ranking(store, "sample")]
    for name, table in (("substitution", sub), ("augmentation", aug)):
        for style, ext in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
            (out / f"{name}.{ext}").write_text(render(table, style) + "\n")
    plot_by_strategy(sub, out / "substitution.png")
    plot_by_strategy(aug, out / "augmentation.png")
    scarcity = plot_scarcity(store, out / "scarcity.png")
    pages = {
        "substitution.html": {"tables": [table_context(sub, "substitution")], "downloads": "substitution",
                              "images": [{"src": "substitution.png", "alt": "macro-F1 by strategy"}]},
        "augmentation.html": {"tables": [table_context(aug, "augmentation")], "downloads": "augmentation",
                              "images": [{"src": "augmentation.png", "alt": "macro-F1 by strategy"}]},
        "ranking.html": {"tables": [table_context(t, f"rank-{i}") for i, t in enumerate(ranks)],
                         "empty": "No submission on the paper's test sets yet."},
        "sample.html": {
            "intro": ["Results on the synthetic sample data or on custom test sets: they check a pipeline, and are "
                      "not comparable with the paper's rows or with each other across test sets."],
            "tables": [table_context(t, f"sample-{i}") for i, t in enumerate(sample_tables) if len(t.frame)],
            "empty": "No submission on sample or custom test sets.",
        },
        "index.html": {
            "intro": [f"{len(store.submissions())} submission(s). Published rows are the paper's (Wang, Tan, Lee, "
                      "WWW 2025), with the confusion matrix each implies on the test set checked for consistency. "
                      "Verified rows were evaluated by a leaderboard worker; self-reported rows are uploaded logs, "
                      "checked and recomputed, and kept apart."],
            "images": [{"heading": "Data scarcity", "src": "scarcity.png", "alt": "macro-F1 by video share"}]
            if scarcity else [],
        },
    }  # fmt: skip
    written = []
    for filename, content in pages.items():
        (out / filename).write_text(page(PAGES[filename], **content), encoding="utf-8")
        written.append(out / filename)
    return written
