"""Leaderboard views -- the paper's substitution (Table 3) and augmentation (Table 4) tables with the published rows
next to submitted ones, and a ranking per task with bootstrap CIs and McNemar's test against the family's No-FT --
written as Markdown, CSV or LaTeX with pytablewriter."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from m2v_bench.leaderboard.published import published_rows
from m2v_bench.leaderboard.store import Store

from m2v_bench.datasets import DATASETS
from m2v_bench.models.families import FAMILIES
from m2v_bench.registry import STRATEGIES, video_targets

COLUMNS = (("accuracy", "Acc"), ("macro_f1", "M-F1"), ("f1", "F1"), ("recall", "R"), ("precision", "P"))
PAPER_COLUMNS = ["Model", "Strategy", "Fine-tune data", "Source"]
RANKING_COLUMNS = ["Submission", "Model", "Strategy", "n", "M-F1", "M-F1 95% CI", "Acc", "F1", "Invalid", "AUROC",
                   "McNemar p vs No-FT"]  # fmt: skip


@dataclass
class Table:
    """One view: a data frame with named columns (a missing value is None), its title and notes."""

    title: str
    frame: pd.DataFrame
    best: set[tuple[int, str]] = field(default_factory=set)
    """(row position, column name) cells that are the best of their column."""
    notes: list[str] = field(default_factory=list)

    def metric_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in PAPER_COLUMNS and c not in RANKING_COLUMNS[:4]]


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype=object).replace({np.nan: None})


def _strategy_name(strategy: str) -> str:
    return STRATEGIES[strategy].display if strategy in STRATEGIES else strategy


def _finetune_data(strategy: str, target: str | None, meme: str | None) -> str:
    return STRATEGIES[strategy].finetune_data(target, meme) if strategy in STRATEGIES else "?"


def _table_strategies(table: str) -> set[str]:
    return {name for name, strategy in STRATEGIES.items() if table in strategy.tables}


def _mark_best(table: Table) -> None:
    for column in table.metric_columns():
        values = [(v, i) for i, v in enumerate(table.frame[column]) if isinstance(v, float)]
        if values:
            top = max(v for v, _ in values)
            table.best |= {(i, column) for v, i in values if v == top}


def _metric_headers() -> list[str]:
    return [f"{DATASETS[t].short} {label}" for t in video_targets() for _, label in COLUMNS]


def _submitted(store: Store, strategies: set[str]) -> list[dict]:
    results = {(r["name"], r["task"]): r for r in store.results()}
    rows = []
    for sub in store.submissions():
        if sub.strategy not in strategies:
            continue
        cells = {}
        for target in video_targets():
            result = results.get((sub.name, f"m2v_{target}"))
            for key, label in COLUMNS:
                cells[f"{DATASETS[target].short} {label}"] = result[key] if result else None
        if all(c is None for c in cells.values()):
            continue
        family = FAMILIES[sub.family].display_name if sub.family in FAMILIES else sub.family
        rows.append({"Model": family, "Strategy": _strategy_name(sub.strategy),
                     "Fine-tune data": _finetune_data(sub.strategy, sub.target, sub.meme_source),
                     "Source": f"submitted: {sub.name}", **cells})  # fmt: skip
    return rows


def _published(table_name: str) -> list[dict]:
    by_key: dict[tuple, dict] = {}
    for row in published_rows():
        if row.table != table_name:
            continue
        key = (row.model, row.strategy, row.finetune_data if table_name != "table4_augmentation" else row.strategy)
        cells = by_key.setdefault(
            key, {"Model": row.model, "Strategy": row.strategy, "Fine-tune data": row.finetune_data,
                  "Source": "published"},
        )  # fmt: skip
        for key_name, label in COLUMNS:
            cells[f"{row.target} {label}"] = row.metrics[key_name]
        if not row.consistent:
            cells["Source"] = "published (inconsistent with its test set)"
    return list(by_key.values())


def _paper_table(title: str, published: str, strategies: str, store: Store) -> Table:
    columns = PAPER_COLUMNS + _metric_headers()
    table = Table(title, _frame(_published(published) + _submitted(store, _table_strategies(strategies)), columns))
    _mark_best(table)
    return table


def substitution(store: Store) -> Table:
    return _paper_table(
        "Substitution (the paper's Table 3): video, original-meme or re-annotated-meme training data",
        "table3_substitution", "substitution", store,
    )  # fmt: skip


def augmentation(store: Store) -> Table:
    return _paper_table(
        "Augmentation (the paper's Table 4): video data plus re-annotated memes",
        "table4_augmentation", "augmentation", store,
    )  # fmt: skip


def mcnemar_p(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> float | None:
    """Exact McNemar test (binomial on the discordant pairs, scipy) of two submissions' (gold, pred) on the same
    samples (``Store.predictions``)."""
    from scipy.stats import binomtest

    if not a or set(a) != set(b):
        return None
    only_a = sum(1 for i in a if (a[i][1] == a[i][0]) and (b[i][1] != b[i][0]))
    only_b = sum(1 for i in a if (a[i][1] != a[i][0]) and (b[i][1] == b[i][0]))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def ranking(store: Store) -> list[Table]:
    submissions = {s.name: s for s in store.submissions()}
    no_ft = {s.family: s.name for s in submissions.values() if s.strategy == "no_ft"}
    tables = []
    results = store.results()
    for task in sorted({r["task"] for r in results}):
        rows = []
        baselines = {family: store.predictions(name, task) for family, name in no_ft.items()}
        for r in sorted((r for r in results if r["task"] == task), key=lambda r: -r["macro_f1"]):
            sub = submissions[r["name"]]
            base = no_ft.get(sub.family)
            if base and base != r["name"]:
                p = mcnemar_p(store.predictions(r["name"], task), baselines[sub.family])
            else:
                p = None
            auroc = r["auroc"] if r["auroc"] is not None and not math.isnan(r["auroc"]) else None
            family = FAMILIES[sub.family].display_name if sub.family in FAMILIES else sub.family
            interval = f"[{r['macro_f1_low']:.3f}, {r['macro_f1_high']:.3f}]"
            values = [r["name"], family, _strategy_name(sub.strategy), r["n"], r["macro_f1"], interval, r["accuracy"],
                      r["f1"], r["invalid_rate"], auroc, p]  # fmt: skip
            rows.append(dict(zip(RANKING_COLUMNS, values, strict=True)))
        table = Table(f"Ranking on {task}", _frame(rows, RANKING_COLUMNS))
        table.notes.append(
            "CI: percentile bootstrap over test samples (1000 resamples). McNemar: exact test against the same "
            "family's No-FT submission on the same samples."
        )
        tables.append(table)
    return tables


# ---------------------------------------------------------------------------------------------------- rendering

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~])")
"""What can start markup in a cell: backslash, code, emphasis, links, raw HTML, strike-through (pytablewriter
escapes the pipes that would end a cell)."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def format_cell(value) -> str:
    """A cell as text: numbers with 3 decimals, None as "-"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def escape_markdown(text: str) -> str:
    """Backslash-escape the characters that make Markdown markup, entities or raw HTML, and drop line breaks, so a
    cell can neither break the table nor carry markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()).replace("&", "&amp;"))


def safe_csv_cell(text: str) -> str:
    """A spreadsheet must not read a cell as a formula: one that starts with = + - @ (or a tab/CR) gets a quote
    (a lone "-", the empty-value mark, is no formula)."""
    return f"'{text}" if text.startswith(_FORMULA_START) and text != "-" else text


def render(table: Table, style: str = "markdown") -> str:
    """A table as Markdown (best values in bold), CSV or LaTeX; text from submissions is escaped for each."""
    frame = table.frame
    if style == "markdown":
        from pytablewriter import MarkdownTableWriter
        from typepy import String

        matrix = []
        for i, row in enumerate(frame.itertuples(index=False)):
            cells = []
            for column, value in zip(frame.columns, row, strict=True):
                text = format_cell(value)
                text = text if isinstance(value, float) else escape_markdown(text)
                cells.append(f"**{text}**" if (i, column) in table.best else text)
            matrix.append(cells)
        writer = MarkdownTableWriter(
            table_name=escape_markdown(table.title), headers=[escape_markdown(h) for h in frame.columns],
            value_matrix=matrix, type_hints=[String] * len(frame.columns), margin=1,
        )  # fmt: skip
        return writer.dumps()
    if style == "csv":
        text = frame.map(format_cell).map(safe_csv_cell)
        text.columns = [safe_csv_cell(str(c)) for c in frame.columns]
        return text.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if style == "latex":
        # pandas escapes & % $ # _ { } ~ ^ \ in every string cell and header (escape=True)
        return frame.map(format_cell).to_latex(index=False, escape=True).rstrip("\n")
    raise ValueError(f"unknown table format {style!r}; one of markdown, csv, latex")
