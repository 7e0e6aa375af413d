"""The registry: every name the paper's concepts go by, in one place.

- **Datasets** and their label spaces: :data:`m2v_bench.datasets.DATASETS` (one :class:`DatasetSpec` each). A
  video dataset is a *target* (its test set is what the paper reports), an image dataset a *meme source*
  (:func:`video_targets`, :func:`meme_sources`).
- **Strategies** (:data:`STRATEGIES`): No-FT, Vid-FT, OM-FT, RM-FT, Vid+RM-FT with their data mixtures and the
  paper's tables they belong to.
- **Tasks** (:func:`task_names`, :func:`parse_task`): ``m2v_<dataset><variant>``; the variants of a dataset follow
  from its modality (:data:`VARIANTS`), and each task's YAML lives in ``tasks/``.
- **Aligned meme sets** (:func:`aligned_name`): a meme source re-annotated to a target, e.g. ``fhm_aligned_with_mhc``.
- **Metrics**: :data:`m2v_bench.metrics.METRICS` and :data:`m2v_bench.metrics.SCORE_METRICS`.

Everything else (the leaderboard's task check and tables, the re-annotation targets, the trainers' mixtures, the
demo, the task descriptors) derives from these or is checked against them by a test. Everything here is computed
from the registries when asked, so a dataset added with :func:`register_dataset` is seen everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from m2v_bench.datasets import DATASETS, DatasetSpec
from m2v_bench.errors import M2VError
from m2v_bench.metrics import METRICS, SCORE_METRICS

Table = Literal["substitution", "augmentation"]


@dataclass(frozen=True)
class Strategy:
    """A fine-tuning strategy of the paper (Section 4): which data it trains on."""

    name: str
    display: str
    """As the paper's tables name it."""
    videos: bool
    """Trains on the target video dataset's train split."""
    memes: Literal["original", "reannotated"] | None
    """Trains on a meme dataset's train split, with its original labels or re-annotated to the target's."""
    tables: tuple[Table, ...]
    """The paper's tables that show it: Table 3 (substitution) and/or Table 4 (augmentation)."""

    @property
    def trains(self) -> bool:
        return self.videos or self.memes is not None

    def finetune_data(self, target: str | None, meme_source: str | None) -> str:
        """The "Fine-tune data" cell of the paper's tables, e.g. "MHC + FHM (re-annotated)"."""

        def short(name: str | None) -> str:
            return DATASETS[name].short if name in DATASETS else str(name)

        parts = [short(target)] if self.videos else []
        if self.memes is not None:
            parts.append(short(meme_source) + (" (re-annotated)" if self.memes == "reannotated" else ""))
        return " + ".join(parts) or "-"


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("no_ft", "No-FT", videos=False, memes=None, tables=("substitution",)),
        Strategy("vid_ft", "Vid-FT", videos=True, memes=None, tables=("substitution", "augmentation")),
        Strategy("om_ft", "OM-FT", videos=False, memes="original", tables=("substitution",)),
        Strategy("rm_ft", "RM-FT", videos=False, memes="reannotated", tables=("substitution", "augmentation")),
        Strategy("vid_rm_ft", "Vid+RM-FT", videos=True, memes="reannotated", tables=("augmentation",)),
    )
}
TRAINED_STRATEGIES = tuple(name for name, s in STRATEGIES.items() if s.trains)
"""The strategies that train an adapter (one recipe script each); No-FT is the base model."""

VARIANTS: dict[str, tuple[str, ...]] = {
    "video": ("", "_keyframe", "_fewshot", "_keyframe_fewshot", "_score"),
    "image": ("", "_score"),
}
"""Task-name suffixes per modality: the plain task, the paper's keyframe view, few-shot prompts, label scoring."""


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise M2VError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}") from None


def video_targets() -> tuple[str, ...]:
    """The datasets whose test sets the paper reports (the video datasets)."""
    return tuple(name for name, spec in DATASETS.items() if spec.modality == "video")


def meme_sources() -> tuple[str, ...]:
    """The meme datasets that can replace or augment a target's videos."""
    return tuple(name for name, spec in DATASETS.items() if spec.modality == "image")


def check_target(name: str, what: str = "--target") -> DatasetSpec:
    if name not in video_targets():
        raise M2VError(f"{what} must be a video dataset ({', '.join(video_targets())}), got {name!r}")
    return DATASETS[name]


def check_meme_source(name: str, what: str = "--meme_source") -> DatasetSpec:
    if name not in meme_sources():
        raise M2VError(f"{what} must be a meme dataset ({', '.join(meme_sources())}), got {name!r}")
    return DATASETS[name]


def task_names() -> list[str]:
    """Every m2v task, e.g. ``m2v_mhc``, ``m2v_mhc_keyframe_fewshot``, ``m2v_fhm_score``."""
    return [f"m2v_{name}{variant}" for name, spec in DATASETS.items() for variant in VARIANTS[spec.modality]]


def parse_task(task: str) -> tuple[str, str] | None:
    """``m2v_<dataset><variant>`` -> (dataset, variant), or None for a name that is not an m2v task."""
    for name, spec in DATASETS.items():
        for variant in VARIANTS[spec.modality]:
            if task == f"m2v_{name}{variant}":
                return name, variant
    return None


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics a task reports (the score variants report AUROC instead of the invalid-answer rate)."""
    parsed = parse_task(task)
    if parsed is None:
        raise M2VError(f"{task!r} is not an m2v task")
    return SCORE_METRICS if parsed[1] == "_score" else METRICS


ALIGNED = "_aligned_with_"


def aligned_name(source: str, target: str) -> str:
    """The paper's name of a meme set re-annotated to a target's definition, e.g. ``fhm_aligned_with_mhc``: the
    aligned manifest's folder (``<dir>/<name>/train.jsonl``), its records' ``dataset`` and the released CSV's stem."""
    return f"{source}{ALIGNED}{target}"


def parse_aligned_name(name: str) -> tuple[str, str] | None:
    """``fhm_aligned_with_mhc`` -> ("fhm", "mhc"): the inverse of :func:`aligned_name` for registered datasets,
    None for any other name."""
    source, sep, target = name.partition(ALIGNED)
    return (source, target) if sep and source in DATASETS and target in DATASETS else None


def register_dataset(spec: DatasetSpec) -> None:
    """Add a dataset at run time (a plugin, a test). Its task YAML(s) go into an lmms-eval ``--include_path``."""
    if spec.name in DATASETS:
        raise M2VError(f"dataset {spec.name!r} is registered already")
    DATASETS[spec.name] = spec


def unregister_dataset(name: str) -> None:
    DATASETS.pop(name, None)
