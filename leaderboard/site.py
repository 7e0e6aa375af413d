"""The static leaderboard site: one page per view (tables that sort on a header click), plots as PNG images, and
the Markdown/CSV/LaTeX tables beside them. ``m2v-bench leaderboard build OUT``."""

from __future__ import annotations

import html
from pathlib import Path

from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.views import Table, augmentation, ranking, render, substitution

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}nav a{margin-right:1em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em}
th{background:#f0f0f0;cursor:pointer}td.best{font-weight:bold}tr.published{color:#555;background:#fafafa}
img{max-width:100%;border:1px solid #eee}.note{color:#666;font-size:.85em}
"""
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, column) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const rows = Array.from(body.rows);
  const asc = th.dataset.asc !== 'true'; th.dataset.asc = asc;
  const key = r => { const t = r.cells[column].innerText; const n = parseFloat(t); return isNaN(n) ? t : n; };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""
PAGES = {"index.html": "Overview", "substitution.html": "Substitution", "augmentation.html": "Augmentation",
         "ranking.html": "Ranking per task"}  # fmt: skip


def table_html(table: Table, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = []
    for i, row in enumerate(table.rows):
        published = any(isinstance(v, str) and v.startswith("published") for v in row)
        cells = []
        for j, value in enumerate(row):
            text = "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
            css = ' class="best"' if (i, j) in table.best else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append(f"<tr{' class=published' if published else ''}>{''.join(cells)}</tr>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table.notes)
    return (f"<h2>{html.escape(table.title)}</h2><table id=\"{table_id}\" class=\"sortable\"><thead><tr>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>{notes}")  # fmt: skip


def page(title: str, content: str) -> str:
    nav = "".join(f'<a href="{href}">{name}</a>' for href, name in PAGES.items())
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>m2v-bench: {html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><nav>{nav}</nav><h1>{html.escape(title)}</h1>{content}"
            f"<script>{SORT_JS}</script></body></html>")  # fmt: skip


def plot_by_strategy(table: Table, out: Path) -> None:
    """Grouped bars: macro-F1 per (model, strategy, data) row, one group per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [i for i, h in enumerate(table.headers) if h.endswith("M-F1")]
    rows = [r for r in table.rows if any(isinstance(r[c], float) for c in columns)]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows) + 2), 4))
    width = 0.8 / max(1, len(columns))
    for k, column in enumerate(columns):
        values = [r[column] if isinstance(r[column], float) else 0.0 for r in rows]
        ax.bar([i + k * width for i in range(len(rows))], values, width, label=table.headers[column])
    ax.set_xticks([i + width * (len(columns) - 1) / 2 for i in range(len(rows))])
    ax.set_xticklabels([f"{r[0]}\n{r[1]} {r[2]}" + ("*" if str(r[3]).startswith("published") else "") for r in rows],
                       rotation=60, ha="right", fontsize=7)  # fmt: skip
    ax.set_ylabel("macro-F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(table.title.split(":")[0] + " (* = published)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_scarcity(store: Store, out: Path) -> bool:
    """macro-F1 against the share of video training data, when submissions with video_fraction < 1 exist."""
    subs = {s.name: s for s in store.submissions() if s.video_fraction is not None}
    points: dict[tuple, list] = {}
    for r in store.results():
        sub = subs.get(r["name"])
        if sub and r["task"] == f"m2v_{sub.target}":
            points.setdefault((sub.family, sub.strategy, sub.target), []).append((sub.video_fraction, r["macro_f1"]))
    if not any(f < 1 for series in points.values() for f, _ in series):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (family, strategy, target), series in sorted(points.items()):
        series.sort()
        ax.plot([f for f, _ in series], [v for _, v in series], marker="o", label=f"{family} {strategy} -> {target}")
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
    for name, table in (("substitution", sub), ("augmentation", aug)):
        for style, ext in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
            (out / f"{name}.{ext}").write_text(render(table, style) + "\n")
    plot_by_strategy(sub, out / "substitution.png")
    plot_by_strategy(aug, out / "augmentation.png")
    scarcity = plot_scarcity(store, out / "scarcity.png")
    downloads = '<p class="note">Also as <a href="{0}.md">Markdown</a>, <a href="{0}.csv">CSV</a>, <a href="{0}.tex">LaTeX</a>.</p>'  # noqa: E501
    pages = {
        "substitution.html": table_html(sub, "substitution") + downloads.format("substitution")
        + '<img src="substitution.png" alt="macro-F1 by strategy">',
        "augmentation.html": table_html(aug, "augmentation") + downloads.format("augmentation")
        + '<img src="augmentation.png" alt="macro-F1 by strategy">',
        "ranking.html": "".join(table_html(t, f"rank-{i}") for i, t in enumerate(ranks))
        or "<p>No submission yet.</p>",
        "index.html": (f"<p>{len(store.submissions())} submission(s). Published rows are the paper's (Wang, Tan, Lee, "
                       "WWW 2025), with the confusion matrix each implies on the test set checked for consistency.</p>"
                       + ('<h2>Data scarcity</h2><img src="scarcity.png" alt="macro-F1 by video share">'
                          if scarcity else "")),
    }  # fmt: skip
    written = []
    for filename, content in pages.items():
        (out / filename).write_text(page(PAGES[filename], content))
        written.append(out / filename)
    return written
