"""Leaderboard views -- the paper's substitution (Table 3) and augmentation (Table 4) tables with the published rows
next to submitted ones, and a ranking per task with bootstrap CIs and McNemar's test against the same base model's
No-FT --
written as Markdown, CSV or LaTeX with pytablewriter.

Rows are compared only on the same test set: the public board (``board="paper"``) shows results on the paper's test
sets only; results on the synthetic sample data or on custom test sets go to the ``sample`` board. Verified rows
(evaluated by a leaderboard worker) and self-reported ones are kept apart: self-reported rows come below the verified
ones, are never marked best, and are ranked in their own tables. A row that cannot be shown (a damaged store row) is
left out with a note saying which and why; it never breaks a view."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pytablewriter import MarkdownTableWriter
from typepy import String

from m2v_bench.csvio import spreadsheet_safe
from m2v_bench.datasets import DATASETS
from m2v_bench.leaderboard import BOARDS
from m2v_bench.leaderboard.published import TEST_SETS, published_rows
from m2v_bench.leaderboard.store import Store
from m2v_bench.metrics import mcnemar_p
from m2v_bench.models.families import FAMILIES
from m2v_bench.models.refs import checkpoint_label
from m2v_bench.registry import STRATEGIES, video_targets

logger = logging.getLogger(__name__)

COLUMNS = (("accuracy", "Acc"), ("macro_f1", "M-F1"), ("f1", "F1"), ("recall", "R"), ("precision", "P"))
PAPER_COLUMNS = ["Model", "Family", "Strategy", "Fine-tune data", "Source", "Test set"]
RANKING_COLUMNS = ["Submission", "Model", "Family", "Strategy", "Status", "Test set", "n", "M-F1", "M-F1 95% CI",
                   "Acc", "F1", "Invalid", "AUROC", "McNemar p vs No-FT"]  # fmt: skip
DESCRIPTIVE = set(PAPER_COLUMNS) | set(RANKING_COLUMNS[:7])
STATUS_ORDER = ("verified", "self-reported")


def on_board(test_set: str | None, board: str) -> bool:
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; one of {', '.join(BOARDS)}")
    return (test_set == "paper") == (board == "paper")


@dataclass
class Table:
    """One view: a data frame with named columns (a missing value is None), its title and notes."""

    title: str
    frame: pd.DataFrame
    best: set[tuple[int, str]] = field(default_factory=set)
    """(row position, column name) cells that are the best of their column."""
    notes: list[str] = field(default_factory=list)

    def metric_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in DESCRIPTIVE]


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype=object).replace({np.nan: None})


def _strategy_name(strategy: str) -> str:
    return STRATEGIES[strategy].display if strategy in STRATEGIES else strategy


def _finetune_data(strategy: str, target: str | None, meme: str | None) -> str:
    return STRATEGIES[strategy].finetune_data(target, meme) if strategy in STRATEGIES else "?"


def model_name(sub) -> str:
    """A submitted row's model: its base checkpoint's own name, plus its adapter's (a local folder marked local).
    The paper's family names are for the paper's published rows only."""
    base = checkpoint_label(sub.base_model)
    adapter = (sub.provenance or {}).get("adapter")
    return f"{base} + {checkpoint_label(adapter)}" if adapter else base


def _paper_family(model: str) -> str:
    """The family of a published row, from the paper's name of its model."""
    return next((name for name, family in FAMILIES.items() if family.paper_name == model), "?")


def _table_strategies(table: str) -> set[str]:
    return {name for name, strategy in STRATEGIES.items() if table in strategy.tables}


def _mark_best(table: Table) -> None:
    """Mark the best value of each metric column among the published and verified rows (never a self-reported
    one)."""
    trusted = [not str(source).startswith("self-reported") for source in table.frame.get("Source", [])]
    for column in table.metric_columns():
        values = [(v, i) for i, v in enumerate(table.frame[column]) if isinstance(v, float) and trusted[i]]
        if values:
            top = max(v for v, _ in values)
            table.best |= {(i, column) for v, i in values if v == top}


def _metric_headers() -> list[str]:
    headers = []
    for target in video_targets():
        short = DATASETS[target].short
        headers += [f"{short} {label}" for _, label in COLUMNS] + [f"{short} M-F1 95% CI", f"{short} n"]
    return headers


def _interval(result: dict) -> str:
    return f"[{float(result['macro_f1_low']):.3f}, {float(result['macro_f1_high']):.3f}]"


def _skipped(table_notes: list[str], name, exc: Exception) -> None:
    note = f"Left out a malformed row ({name!r}): {type(exc).__name__}: {exc}"
    logger.warning(note)
    table_notes.append(note)


def _submitted(store: Store, strategies: set[str], board: str, notes: list[str]) -> list[dict]:
    results = {(r["name"], r["task"]): r for r in store.results() if on_board(r.get("test_set"), board)}
    rows = []
    for sub in sorted(store.submissions(), key=lambda s: (_status_rank(s.status), s.name)):
        try:
            if sub.strategy not in strategies:
                continue
            if sub.status not in STATUS_ORDER:  # revoked: out of the tables, with its note
                notes.append(f"Left out {sub.name} ({sub.status}): {sub.note or 'no note'}")
                continue
            cells, test_sets = {}, set()
            for target in video_targets():
                short = DATASETS[target].short
                result = results.get((sub.name, f"m2v_{target}"))
                for key, label in COLUMNS:
                    cells[f"{short} {label}"] = float(result[key]) if result else None
                cells[f"{short} M-F1 95% CI"] = _interval(result) if result else None
                cells[f"{short} n"] = int(result["n"]) if result else None
                if result:
                    test_sets.add(str(result["test_set"]))
            if not test_sets:
                continue
            rows.append({"Model": model_name(sub), "Family": sub.family, "Strategy": _strategy_name(sub.strategy),
                         "Fine-tune data": _finetune_data(sub.strategy, sub.target, sub.meme_source),
                         "Source": f"{sub.status}: {sub.name}", "Test set": ", ".join(sorted(test_sets)),
                         **cells})  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            _skipped(notes, sub.name, exc)
    return rows


def _status_rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def _published(table_name: str) -> list[dict]:
    by_key: dict[tuple, dict] = {}
    for row in published_rows():
        if row.table != table_name:
            continue
        key = (row.model, row.strategy, row.finetune_data if table_name != "table4_augmentation" else row.strategy)
        cells = by_key.setdefault(
            key, {"Model": row.model, "Family": _paper_family(row.model), "Strategy": row.strategy,
                  "Fine-tune data": row.finetune_data,
                  "Source": "published", "Test set": "paper"},
        )  # fmt: skip
        for key_name, label in COLUMNS:
            cells[f"{row.target} {label}"] = row.metrics[key_name]
        cells[f"{row.target} n"] = TEST_SETS[row.target][0]
        if not row.consistent:
            cells["Source"] = "published (inconsistent with its test set)"
    return list(by_key.values())


def _paper_table(title: str, published: str, strategies: str, store: Store, board: str) -> Table:
    columns = PAPER_COLUMNS + _metric_headers()
    notes: list[str] = []
    submitted = _submitted(store, _table_strategies(strategies), board, notes)
    if board == "paper":
        rows = _published(published) + submitted
    else:
        rows = submitted
        title += " -- sample data board (synthetic or custom test sets; not comparable with the paper)"
    table = Table(title, _frame(rows, columns), notes=notes)
    _mark_best(table)
    table.notes.append("Self-reported rows (logs uploaded by their authors) come below the verified ones and are "
                       "never marked best.")  # fmt: skip
    return table


def substitution(store: Store, board: str = "paper") -> Table:
    return _paper_table(
        "Substitution (the paper's Table 3): video, original-meme or re-annotated-meme training data",
        "table3_substitution", "substitution", store, board,
    )  # fmt: skip


def augmentation(store: Store, board: str = "paper") -> Table:
    return _paper_table(
        "Augmentation (the paper's Table 4): video data plus re-annotated memes",
        "table4_augmentation", "augmentation", store, board,
    )  # fmt: skip


def ranking(store: Store, board: str = "paper") -> list[Table]:
    """One table per (task, status) on a board: the verified ranking first, the self-reported one apart."""
    submissions = {s.name: s for s in store.submissions()}
    # McNemar's baseline is a No-FT of the same base model, a verified one when there is one
    no_ft: dict[str, str] = {}
    for s in sorted(submissions.values(), key=lambda s: -_status_rank(s.status)):
        if s.strategy == "no_ft" and s.status in STATUS_ORDER:
            no_ft[s.base_model] = s.name
    tables = []
    results = [r for r in store.results() if on_board(r.get("test_set"), board)]
    for task in sorted({r["task"] for r in results}):
        baselines = {base: store.predictions(name, task) for base, name in no_ft.items()}
        first = len(tables)
        for status in STATUS_ORDER:
            rows, notes = [], []
            chosen = [r for r in results if r["task"] == task and submissions.get(r["name"])
                      and submissions[r["name"]].status == status]  # fmt: skip
            for r in sorted(chosen, key=lambda r: -_number(r["macro_f1"])):
                try:
                    rows.append(_ranking_row(store, r, submissions[r["name"]], no_ft, baselines, task))
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    _skipped(notes, r["name"], exc)
            if not chosen:
                continue
            table = Table(f"Ranking on {task} ({status})", _frame(rows, RANKING_COLUMNS), notes=notes)
            table.notes.append(
                "CI: percentile bootstrap over test samples (1000 resamples). McNemar: exact test against the same "
                "base model's No-FT submission on the same samples."
            )
            if status == "self-reported":
                table.notes.append("Self-reported: logs uploaded by their authors, checked and recomputed but not "
                                   "evaluated by the leaderboard; never ranked among the verified rows.")  # fmt: skip
            tables.append(table)
        left_out = [f"Left out {name} ({submissions[name].status}): {submissions[name].note or 'no note'}"
                    for name in sorted({r["name"] for r in results if r["task"] == task})
                    if name in submissions and submissions[name].status not in STATUS_ORDER]  # fmt: skip
        if left_out and len(tables) > first:
            tables[-1].notes.extend(left_out)
        elif left_out:
            tables.append(Table(f"Ranking on {task} (none verified)", _frame([], RANKING_COLUMNS), notes=left_out))
    return tables


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def _ranking_row(store: Store, r: dict, sub, no_ft: dict, baselines: dict, task: str) -> dict:
    base = no_ft.get(sub.base_model)
    p = (
        mcnemar_p(store.predictions(r["name"], task), baselines[sub.base_model])
        if base and base != r["name"]
        else None
    )
    auroc = float(r["auroc"]) if r["auroc"] is not None and not math.isnan(r["auroc"]) else None
    values = [r["name"], model_name(sub), sub.family, _strategy_name(sub.strategy), sub.status, str(r["test_set"]),
              int(r["n"]),
              float(r["macro_f1"]), _interval(r), float(r["accuracy"]), float(r["f1"]), float(r["invalid_rate"]),
              auroc, p]  # fmt: skip
    return dict(zip(RANKING_COLUMNS, values, strict=True))


# ---------------------------------------------------------------------------------------------------- rendering

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~])")
"""What can start markup in a cell: backslash, code, emphasis, links, raw HTML, strike-through (pytablewriter
escapes the pipes that would end a cell)."""


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


def render(table: Table, style: str = "markdown") -> str:
    """A table as Markdown (best values in bold), CSV or LaTeX; text from submissions is escaped for each."""
    frame = table.frame
    if style == "markdown":
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
        text = frame.map(format_cell).map(spreadsheet_safe)
        text.columns = [spreadsheet_safe(str(c)) for c in frame.columns]
        return text.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if style == "latex":
        # pandas escapes & % $ # _ { } ~ ^ \ in every string cell and header (escape=True)
        return frame.map(format_cell).to_latex(index=False, escape=True).rstrip("\n")
    raise ValueError(f"unknown table format {style!r}; one of markdown, csv, latex")
