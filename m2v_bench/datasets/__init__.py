"""The dataset registry: one :class:`DatasetSpec` per dataset. Adding a dataset = one preparer module + one
entry here (+ its task YAML)."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.datasets import fhm, hatemm, mami, mhc, paper
from m2v_bench.datasets.common import (
    DatasetSpec,
    KnownLeak,
    PrepareResult,
    TableRow,
    bundled_paper_table,
    read_paper_table,
    write_prepared,
)
from m2v_bench.errors import PrepareError
from m2v_bench.settings import SAMPLE_MARKER

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mhc",
            short="MHC",
            title="MultiHateClip (English)",
            modality="video",
            label_space_name="offensive",
            prepare_official=mhc.prepare,
            layout="English_data/annotation/{train,valid,test}.tsv, English_data/text.json, videos <id>.mp4",
            has_paper_table=True,
            official_splits="MultiHateClip's own splits; text = its transcript alone",
            obtain=(
                "Source: MultiHateClip (Wang et al., ACM MM 2024), github.com/Social-AI-Studio/MultiHateClip.\n"
                "1. Clone the repository; --root is its folder (English_data/annotation/*.tsv and text.json).\n"
                "2. Download the English videos from YouTube by id, e.g. with yt-dlp:\n"
                "     yt-dlp -f mp4 -o 'videos/%(title)s [%(id)s].%(ext)s' -a ids.txt\n"
                "   Files named <id>.mp4, <id>/<any>.mp4 or 'Title [<id>].mp4' (yt-dlp's default) are all found.\n"
                "Text: the default --table paper takes the paper's text column (what the paper prompted with);\n"
                "--table official takes MultiHateClip's transcript alone (text.json), so prompts differ."
            ),
            known_leaks=(
                KnownLeak(
                    id="k9OtaMbK0Ac",
                    release="MultiHateClip English_data/annotation: both train.tsv and test.tsv",
                    why_kept="the paper's table keeps it in both, and its MHC test set of 200 (67 offensive) "
                    "includes it; training drops it",
                ),
            ),
        ),
        DatasetSpec(
            name="hatemm",
            short="HateMM",
            title="HateMM",
            modality="video",
            label_space_name="hateful",
            prepare_official=hatemm.prepare,
            layout="HateMM_annotation.csv, hate_videos/*.mp4, non_hate_videos/*.mp4",
            has_paper_table=True,
            obtain=(
                "Source: HateMM (Das et al., ICWSM 2023); the Dataset folder of github.com/hate-alert/HateMM\n"
                "   says where to download it.\n"
                "1. Download HateMM_annotation.csv and the video archives.\n"
                "2. Unpack them under one folder (hate_videos/, non_hate_videos/); --root is that folder.\n"
                "HateMM has no official split: the default --table paper takes the paper's split."
            ),
        ),
        DatasetSpec(
            name="fhm",
            short="FHM",
            title="Facebook Hateful Memes",
            modality="image",
            label_space_name="hateful",
            prepare_official=fhm.prepare,
            layout="train.jsonl, dev_seen.jsonl (or dev.jsonl), test_seen.jsonl (or a labelled test.jsonl), img/",
            obtain=(
                "Source: Facebook Hateful Memes (Kiela et al., NeurIPS 2020), from the DrivenData challenge page\n"
                "or its Hugging Face / Kaggle copies (license agreement required).\n"
                "1. Download and unpack the release so that img/ holds the images (tar -xzf img.tar.gz).\n"
                "2. --root is the folder with train.jsonl. Phase-2 files dev_seen/test_seen are used; the\n"
                "   phase-1 layout (dev.jsonl, unlabelled test.jsonl) gives train + validation and no test split."
            ),
        ),
        DatasetSpec(
            name="mami",
            short="MAMI",
            title="MAMI (SemEval-2022 Task 5)",
            modality="image",
            label_space_name="misogynous",
            prepare_official=mami.prepare,
            layout="training.csv + images, Test.csv + images, test_labels.txt",
            obtain=(
                "Source: MAMI, SemEval-2022 Task 5 (Fersini et al.), from the organisers' repository\n"
                "(github.com/MIND-Lab/SemEval2022-Task-5-Multimedia-Automatic-Misogyny-Identification-MAMI-);\n"
                "the archives may be password-protected: the organisers give the password on request.\n"
                "1. Unpack TRAINING.zip and test.zip, and put the gold file test_labels.txt beside them.\n"
                "2. --root is the folder above both (files are found anywhere below it)."
            ),
        ),
    )
}

FORMATS = ("official", "paper")


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise PrepareError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def resolve_table(spec: DatasetSpec, table: str | None) -> tuple[list[TableRow] | None, str]:
    """``table`` is ``paper`` (bundled, the default where one exists), ``official`` (the release's own splits),
    or the path of a CSV in the paper's format."""
    if table is None:
        table = "paper" if spec.has_paper_table else "official"
    if table == "official":
        return None, "official"
    if table == "paper":
        if not spec.has_paper_table:
            raise PrepareError(
                f"no paper split table ships for {spec.name}; it has official splits (--table official)"
            )
        return bundled_paper_table(spec.name), f"the paper's {spec.name} table"
    path = Path(table)
    if not path.is_file():
        raise PrepareError(f"--table {table}: not 'paper', 'official' or an existing CSV file")
    return read_paper_table(path), str(path)


def prepare(
    name: str,
    root: Path,
    fmt: str = "official",
    table: str | None = None,
    media_root: Path | None = None,
) -> PrepareResult:
    """Turn a raw dataset (official layout, or the paper's CSV) into manifest records."""
    spec = get_dataset(name)
    if not root.exists():
        raise PrepareError(f"--root {root}: does not exist")
    if fmt == "paper":
        if spec.modality != "video":
            raise PrepareError("--format paper covers the paper's video CSVs (mhc, hatemm)")
        return _mark_synthetic(paper.prepare(spec, root, media_root), root)
    if fmt != "official":
        raise PrepareError(f"unknown --format {fmt!r}; expected one of {FORMATS}")
    rows, table_name = resolve_table(spec, table)
    return _mark_synthetic(spec.prepare_official(spec, root, rows, table_name), root)


def _mark_synthetic(result: PrepareResult, root: Path) -> PrepareResult:
    """Sample data generated by m2v-bench carry a marker file at their root (above each dataset's folder)."""
    folder = root if root.is_dir() else root.parent
    result.synthetic = any((parent / SAMPLE_MARKER).is_file() for parent in (folder, *list(folder.parents)[:2]))
    return result


__all__ = [
    "DATASETS",
    "FORMATS",
    "DatasetSpec",
    "KnownLeak",
    "PrepareResult",
    "get_dataset",
    "prepare",
    "write_prepared",
]
