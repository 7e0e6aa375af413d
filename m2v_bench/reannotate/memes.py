"""The inputs every stage shares: a prepared meme manifest (one source, original labels) and the target's
label space."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.errors import M2VError
from m2v_bench.labels import LabelSpace
from m2v_bench.manifest import Record, read_manifest, with_absolute_media
from m2v_bench.registry import check_target
from m2v_bench.validate import media_problems


def target_space(target: str) -> LabelSpace:
    return check_target(target).label_space


def load_memes(manifest: Path) -> list[Record]:
    memes = with_absolute_media(read_manifest(manifest), manifest.parent)
    if not memes:
        raise M2VError(f"{manifest}: no meme in the manifest; prepare the meme dataset first")
    if any(m.modality != "image" for m in memes):
        raise M2VError(f"{manifest}: re-annotation takes meme (image) manifests")
    sources = sorted({m.source for m in memes})
    if len(sources) > 1:
        raise M2VError(f"{manifest}: memes of several sources {sources}; re-annotate one meme dataset at a time")
    aligned = [m.id for m in memes if m.dataset != m.source]
    if aligned:
        raise M2VError(
            f"{manifest}: meme {aligned[0]} is already re-annotated ({memes[0].dataset}); give the prepared meme "
            "manifest with its original labels (e.g. data/fhm/train.jsonl)"
        )
    seen: set[str] = set()
    for meme in memes:
        if meme.id in seen:
            raise M2VError(f"{manifest} [{meme.id}]: the meme id appears twice; `m2v-bench validate` lists them")
        seen.add(meme.id)
    return memes


def check_images(memes: list[Record], manifest: Path) -> None:
    """Every meme's image opens as an image: probed before a model loads or a predictions file is made, so a
    missing, empty, truncated or non-image file is one error listing them all, and nothing is written."""
    missing = [m.id for m in memes if m.media is None]
    if missing:
        raise M2VError(
            f"{manifest} [{missing[0]}]: the meme has no image (media is null); `m2v-bench validate` lists them"
        )
    problems = media_problems(memes, manifest, cached=True)
    if problems:
        listing = "; ".join(f"{record.id} ({kind}: {record.media})" for record, kind, _ in problems[:10])
        more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise M2VError(
            f"{manifest}: {len(problems)} of {len(memes)} memes have unusable images, found before the model loads: "
            f"{listing}{more}; fix or remove them (`m2v-bench validate {manifest.parent}` reports them)"
        )
