"""doc_to_* functions of the m2v tasks. Pure functions of the doc (no work at import); the prompt, the label words,
the answer parser and the metrics all come from m2v_bench, so every task asks and scores the same way.

Bad media are found when the task loads, before any model call: every sample's media is probed (in parallel), and
any problem stops the task with one error that lists every bad sample. ``M2V_BAD_MEDIA=invalid`` instead scores
each such sample as an invalid answer: the model sees a blank image, the record says ``media_error``, and the
``media_error_rate`` metric counts them. Nothing is dropped."""

from __future__ import annotations

import ast
import hashlib

from PIL import Image

from m2v_bench.data_dir import identify_test_set, manifest_path
from m2v_bench.datasets import DATASETS
from m2v_bench.errors import M2VError, stops_the_run
from m2v_bench.frames import CACHE_VERSION, FrameSampler, FrameView
from m2v_bench.labels import PARSER_VERSION, PROMPT_VERSION, few_shot_prompt, get_label_space
from m2v_bench.manifest import read_manifest, split_hash, with_absolute_media
from m2v_bench.media import load_image
from m2v_bench.metrics import INVALID, METRICS, SCORE_METRICS, auroc, classification_metrics, strict_macro_f1
from m2v_bench.settings import BAD_MEDIA_ENV, bad_media_policy
from m2v_bench.stat_cache import FileResultCache
from m2v_bench.validate import media_problems

VIEWS = ("video", "keyframe", "image")
_PROMPT_MODALITY = {"video": "video", "keyframe": "image", "image": "image"}


@stops_the_run
def process_docs(dataset):
    """Replace the task's one-line descriptor (dataset, view) with the docs of that dataset's test manifest."""
    import datasets  # imported here: HF datasets takes a second, and only building the task needs it

    if len(dataset) != 1:
        raise M2VError(f"an m2v task descriptor holds one line, this one {len(dataset)}")
    name, view = dataset[0]["dataset"], dataset[0]["view"]
    if view not in VIEWS:
        raise M2VError(f"unknown view {view!r} in the {name} task descriptor; expected one of {VIEWS}")
    path = manifest_path(name, "test")
    records = read_manifest(path)
    test_sha256 = split_hash(records)
    test_set = identify_test_set(name, path, test_sha256)
    media_errors = _media_errors(records, path)
    records = with_absolute_media(records, path.parent)
    fallbacks = _keyframe_fallbacks(records, path, media_errors) if view == "keyframe" else {}
    rows = []
    for record in records:
        rows.append(
            {
                "id": record.id,
                "dataset": record.dataset,
                "source": record.source,
                "label": record.label,
                "label_space": record.label_space,
                "text": record.text,
                "media": record.media,
                "view": view,
                "test_sha256": test_sha256,
                "test_set": test_set,
                "media_error": media_errors.get(record.id),
                "keyframe_fallback": fallbacks.get(record.id),
            }
        )
    if not rows:
        raise M2VError(f"{path} holds no sample")
    return datasets.Dataset.from_list(rows)


def _media_errors(records, path) -> dict[str, str]:
    """{id: problem} of the samples whose media cannot be used; an error listing them all unless the policy is
    ``invalid``."""
    policy = bad_media_policy()
    problems = media_problems(records, path, cached=True)
    if problems and policy == "error":
        listing = "; ".join(f"{record.id} ({kind}: {record.media or 'no file'})" for record, kind, _ in problems)
        raise M2VError(
            f"{len(problems)} of {len(records)} samples in {path} have unusable media, found before any model call: "
            f"{listing}. Fix them (`m2v-bench validate {path.parent}` reports them), or set {BAD_MEDIA_ENV}=invalid "
            "to score them as invalid answers"
        )
    return {record.id: f"{kind}: {message}" for record, kind, message in problems}


def _keyframe_fallbacks(records, path, media_errors: dict[str, str]) -> dict[str, bool]:
    """{id: True when no frame passes the keyframe threshold} for the keyframe view. The scan stops at the first
    frame that passes (usually the first), and unchanged clips reuse earlier scans (:mod:`m2v_bench.stat_cache`)."""
    sampler, view = FrameSampler(), FrameView.keyframe()
    usable = [r for r in records if r.id not in media_errors and r.media]
    namespace = f"keyframe-fallback-v{CACHE_VERSION}-{hashlib.sha256(view.key().encode()).hexdigest()[:12]}"
    cache = FileResultCache(namespace, path)
    flags = cache.map(lambda r: sampler.sample(r.media, view).fallback, usable, lambda r: r.media)
    return {record.id: flag for record, flag in zip(usable, flags, strict=True)}


def _media(doc) -> str:
    if not doc["media"]:
        raise M2VError(
            f"sample {doc['id']} of {doc['dataset']} has no media file; add it and prepare again "
            "(`m2v-bench validate` lists every such sample)"
        )
    return doc["media"]


@stops_the_run
def doc_to_visual(doc):
    """The video path (video view: the model samples frames itself), the keyframe (keyframe view: the paper's
    LLaMA input, 560x560), or the meme image."""
    if doc.get("media_error"):  # M2V_BAD_MEDIA=invalid: the answer is scored invalid whatever the model says
        return [Image.new("RGB", (32, 32))]
    if doc["view"] == "video":
        return [_media(doc)]
    if doc["view"] == "keyframe":
        return FrameSampler().sample(_media(doc), FrameView.keyframe()).images()
    return [load_image(_media(doc))]


@stops_the_run
def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    shots = int((lmms_eval_specific_kwargs or {}).get("shots", 0))
    demos = DATASETS[doc["dataset"]].demonstrations()[:shots] if shots else []
    if shots > len(demos):
        raise M2VError(f"{shots} shots asked, but {doc['dataset']} has {len(demos)} demonstrations")
    space = get_label_space(doc["label_space"])
    return few_shot_prompt(doc["text"], space, _PROMPT_MODALITY[doc["view"]], demos)


@stops_the_run
def doc_to_target(doc):
    return get_label_space(doc["label_space"]).word(doc["label"])


@stops_the_run
def process_results(doc, results):
    """One record per sample for every metric: id, gold, parsed prediction, raw response and the test set's content
    hash, so the per-sample log alone is enough to verify and recompute the metrics (the leaderboard does)."""
    response = results[0] if results else ""
    prediction = INVALID if doc.get("media_error") else get_label_space(doc["label_space"]).parse(response)
    item = {"id": doc["id"], "gold": doc["label"], "pred": int(prediction), "response": response,
            "test_sha256": doc["test_sha256"], "test_set": doc["test_set"], "prompt_version": PROMPT_VERSION,
            "parser_version": PARSER_VERSION, "media_error": doc.get("media_error"),
            "keyframe_fallback": doc.get("keyframe_fallback")}  # fmt: skip
    return dict.fromkeys(METRICS, item)


@stops_the_run
def doc_to_choice(doc):
    """The score variants' two answers, negative first (index = label)."""
    space = get_label_space(doc["label_space"])
    return [space.negative, space.positive]


@stops_the_run
def process_results_score(doc, results):
    """``results`` = (loglikelihood, is_greedy) of the negative and the positive answer (lmms-eval 0.7's response
    filters hand them over as their string form)."""
    (negative, _), (positive, _) = (ast.literal_eval(r) if isinstance(r, str) else r for r in results)
    pred, score = (INVALID, 0.0) if doc.get("media_error") else (int(positive > negative), positive - negative)
    item = {"id": doc["id"], "gold": doc["label"], "pred": pred, "score": score, "test_sha256": doc["test_sha256"],
            "test_set": doc["test_set"], "prompt_version": PROMPT_VERSION, "media_error": doc.get("media_error"),
            "keyframe_fallback": doc.get("keyframe_fallback")}  # fmt: skip
    return dict.fromkeys(SCORE_METRICS, item)


def aggregate_auroc(items):
    return auroc([i["gold"] for i in items], [i["score"] for i in items])


def _aggregate(items, metric: str) -> float:
    return classification_metrics([i["gold"] for i in items], [i["pred"] for i in items])[metric]


def aggregate_accuracy(items):
    return _aggregate(items, "accuracy")


def aggregate_macro_f1(items):
    return _aggregate(items, "macro_f1")


def aggregate_f1(items):
    return _aggregate(items, "f1")


def aggregate_precision(items):
    return _aggregate(items, "precision")


def aggregate_recall(items):
    return _aggregate(items, "recall")


def aggregate_invalid_rate(items):
    return _aggregate(items, "invalid_rate")


def aggregate_media_error_rate(items):
    return sum(1 for i in items if i.get("media_error")) / len(items)


def aggregate_macro_f1_strict(items):
    return strict_macro_f1([i["gold"] for i in items], [i["pred"] for i in items])
