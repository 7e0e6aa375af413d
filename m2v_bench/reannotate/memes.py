"""The inputs every stage shares: a prepared meme manifest (one source, original labels) and the target's
label space."""

from __future__ import annotations

from pathlib import Path

from m2v_bench.errors import M2VError
from m2v_bench.labels import LabelSpace
from m2v_bench.manifest import Record, read_manifest, with_absolute_media
from m2v_bench.registry import check_target


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
