"""The cache of per-file check results (media probe, keyframe scan) that lmms-eval task loads reuse."""

from __future__ import annotations

import os
import time

from media_fixtures import good_video

from m2v_bench.manifest import Record
from m2v_bench.stat_cache import FileResultCache
from m2v_bench.validate import media_problems


class Counting:
    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, path):
        self.calls.append(path.name)
        return path.read_text()


def _cache(tmp_path, manifest="m.jsonl"):
    return FileResultCache("test", tmp_path / manifest, root=tmp_path / "cache")


def test_unchanged_files_are_not_checked_again_in_a_new_process(tmp_path):
    files = [tmp_path / f"{name}.txt" for name in "abc"]
    for path in files:
        path.write_text(path.stem)
    check = Counting()
    assert _cache(tmp_path).map(check, files, lambda p: p) == ["a", "b", "c"]
    again = Counting()
    assert _cache(tmp_path).map(again, files, lambda p: p) == ["a", "b", "c"]  # a new cache object reads the file
    assert check.calls == ["a.txt", "b.txt", "c.txt"] and again.calls == []


def test_a_rewrite_with_the_same_size_and_mtime_is_checked_again(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    _cache(tmp_path).map(Counting(), [path], lambda p: p)
    stat = path.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity (one kernel tick)
    path.write_text("new")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, mtime set back: only ctime tells
    check = Counting()
    assert _cache(tmp_path).map(check, [path], lambda p: p) == ["new"]
    assert check.calls == ["a.txt"]


def test_each_manifest_and_namespace_has_its_own_entries(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    _cache(tmp_path, "one.jsonl").map(Counting(), [path], lambda p: p)
    other = Counting()
    _cache(tmp_path, "two.jsonl").map(other, [path], lambda p: p)
    third = Counting()
    FileResultCache("other", tmp_path / "one.jsonl", root=tmp_path / "cache").map(third, [path], lambda p: p)
    assert other.calls == ["a.txt"] and third.calls == ["a.txt"]


def test_a_corrupt_or_unwritable_cache_only_costs_work(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    cache = _cache(tmp_path)
    cache.map(Counting(), [path], lambda p: p)
    cache.path.write_text("{not json")
    check = Counting()
    assert _cache(tmp_path).map(check, [path], lambda p: p) == ["x"] and check.calls == ["a.txt"]
    blocked = FileResultCache("test", tmp_path / "m.jsonl", root=path)  # root is a file: nothing can be written
    assert blocked.map(Counting(), [path], lambda p: p) == ["x"]
    assert not blocked.path.exists()


def test_missing_files_are_never_cached(tmp_path):
    missing = tmp_path / "gone.txt"
    calls = []
    for _ in range(2):
        _cache(tmp_path).map(lambda p: calls.append(p) or "checked", [missing], lambda p: p)
    assert len(calls) == 2


def test_cached_media_probe_sees_a_clip_truncated_after_the_first_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("M2V_CACHE", str(tmp_path / "cache"))
    clip = good_video(tmp_path / "v1.mp4")
    record = Record(id="v1", dataset="mhc", split="test", modality="video", media="v1.mp4", frames_dir=None,
                    text="t", label=0, label_space="offensive", source="mhc")  # fmt: skip
    manifest = tmp_path / "test.jsonl"
    assert media_problems([record], manifest, cached=True) == []
    assert list((tmp_path / "cache" / "file-results").glob("media-probe-*/*.json"))
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    [(bad, kind, _)] = media_problems([record], manifest, cached=True)
    assert bad.id == "v1" and kind == "corrupt-or-truncated"


def test_cache_files_of_manifests_not_checked_for_a_month_are_deleted(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    old = _cache(tmp_path, "old.jsonl")
    old.map(Counting(), [path], lambda p: p)
    month_ago = time.time() - 31 * 86400
    os.utime(old.path, (month_ago, month_ago))
    recent = _cache(tmp_path, "recent.jsonl")
    recent.map(Counting(), [path], lambda p: p)
    assert recent.path.is_file() and not old.path.exists()
