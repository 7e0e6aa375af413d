"""Leaderboard views -- the paper's substitution (Table 3) and augmentation (Table 4) tables with the published rows
next to submitted ones, and a ranking per task with bootstrap CIs and McNemar's test against the family's No-FT --
written as Markdown, CSV or LaTeX with pytablewriter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from m2v_bench.leaderboard.published import published_rows
from m2v_bench.leaderboard.store import Store

from m2v_bench.datasets import DATASETS
from m2v_bench.models.families import FAMILIES
from m2v_bench.registry import STRATEGIES, video_targets

COLUMNS = (("accuracy", "Acc"), ("macro_f1", "M-F1"), ("f1", "F1"), ("recall", "R"), ("precision", "P"))


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list]
    best: set[tuple[int, int]] = field(default_factory=set)
    """(row, column) cells that are the best of their column."""
    notes: list[str] = field(default_factory=list)


def _strategy_name(strategy: str) -> str:
    return STRATEGIES[strategy].display if strategy in STRATEGIES else strategy


def _finetune_data(strategy: str, target: str | None, meme: str | None) -> str:
    return STRATEGIES[strategy].finetune_data(target, meme) if strategy in STRATEGIES else "?"


def _table_strategies(table: str) -> set[str]:
    return {name for name, strategy in STRATEGIES.items() if table in strategy.tables}


def _mark_best(table: Table, first_metric_column: int) -> None:
    for column in range(first_metric_column, len(table.headers)):
        values = [(row[column], i) for i, row in enumerate(table.rows) if isinstance(row[column], float)]
        if values:
            top = max(v for v, _ in values)
            table.best |= {(i, column) for v, i in values if v == top}


def _submitted(store: Store, strategies: set[str]) -> list[list]:
    results = {(r["name"], r["task"]): r for r in store.results()}
    rows = []
    for sub in store.submissions():
        if sub.strategy not in strategies:
            continue
        cells = []
        for target in video_targets():
            result = results.get((sub.name, f"m2v_{target}"))
            cells += [result[key] if result else None for key, _ in COLUMNS]
        if all(c is None for c in cells):
            continue
        family = FAMILIES[sub.family].display_name if sub.family in FAMILIES else sub.family
        rows.append(
            [
                family,
                _strategy_name(sub.strategy),
                _finetune_data(sub.strategy, sub.target, sub.meme_source),
                f"submitted: {sub.name}",
                *cells,
            ]
        )
    return rows


def _metric_headers() -> list[str]:
    return [f"{DATASETS[t].short} {label}" for t in video_targets() for _, label in COLUMNS]


def _published(table_name: str) -> list[list]:
    by_key: dict[tuple, list] = {}
    for row in published_rows():
        if row.table != table_name:
            continue
        key = (row.model, row.strategy, row.finetune_data if table_name != "table4_augmentation" else row.strategy)
        targets = [DATASETS[t].short for t in video_targets()]
        cells = by_key.setdefault(
            key, [row.model, row.strategy, row.finetune_data, "published", *[None] * len(COLUMNS) * len(targets)]
        )
        offset = 4 + len(COLUMNS) * targets.index(row.target)
        for i, (key_name, _) in enumerate(COLUMNS):
            cells[offset + i] = row.metrics[key_name]
        if not row.consistent:
            cells[3] = "published (inconsistent with its test set)"
    return list(by_key.values())


def substitution(store: Store) -> Table:
    table = Table(
        "Substitution (the paper's Table 3): video, original-meme or re-annotated-meme training data",
        ["Model", "Strategy", "Fine-tune data", "Source", *_metric_headers()],
        _published("table3_substitution") + _submitted(store, _table_strategies("substitution")),
    )
    _mark_best(table, 4)
    return table


def augmentation(store: Store) -> Table:
    table = Table(
        "Augmentation (the paper's Table 4): video data plus re-annotated memes",
        ["Model", "Strategy", "Fine-tune data", "Source", *_metric_headers()],
        _published("table4_augmentation") + _submitted(store, _table_strategies("augmentation")),
    )
    _mark_best(table, 4)
    return table


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
            rows.append([r["name"], FAMILIES[sub.family].display_name if sub.family in FAMILIES else sub.family,
                         _strategy_name(sub.strategy), r["n"], r["macro_f1"],
                         f"[{r['macro_f1_low']:.3f}, {r['macro_f1_high']:.3f}]", r["accuracy"], r["f1"],
                         r["invalid_rate"], auroc, p])  # fmt: skip
        table = Table(f"Ranking on {task}", ["Submission", "Model", "Strategy", "n", "M-F1", "M-F1 95% CI", "Acc",
                                             "F1", "Invalid", "AUROC", "McNemar p vs No-FT"], rows)  # fmt: skip
        table.notes.append("CI: percentile bootstrap over test samples (1000 resamples). McNemar: exact test against "
                           "the same family's No-FT submission on the same samples.")  # fmt: skip
        tables.append(table)
    return tables


def _cell(value, bold: bool, style: str):
    if value is None:
        return "-"
    if style == "latex":  # pytablewriter's LaTeX puts strings with symbols in \\verb: keep numbers numbers
        return round(value, 3) if isinstance(value, float) else value
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"**{text}**" if bold and style == "markdown" else text


def render(table: Table, style: str = "markdown") -> str:
    """A table as Markdown (best values in bold), CSV or LaTeX."""
    from pytablewriter import CsvTableWriter, LatexTableWriter, MarkdownTableWriter
    from typepy import String

    writer_class = {"markdown": MarkdownTableWriter, "csv": CsvTableWriter, "latex": LatexTableWriter}[style]
    matrix = [[_cell(v, (i, j) in table.best, style) for j, v in enumerate(row)] for i, row in enumerate(table.rows)]
    hints = [] if style == "latex" else [String] * len(table.headers)
    writer = writer_class(headers=table.headers, value_matrix=matrix, type_hints=hints)
    if style == "markdown":
        writer.table_name = table.title
        writer.margin = 1
    return writer.dumps()
