import hashlib
import json
from dataclasses import replace

import pytest

from m2v_bench.errors import ManifestError
from m2v_bench.manifest import Record, read_manifest, split_hash, write_manifest


def make_record(**overrides):
    fields = dict(
        id="v1",
        dataset="mhc",
        split="test",
        modality="video",
        text="hello",
        label=1,
        label_space="offensive",
        source="mhc",
        media="videos/v1.mp4",
        extra={"mhc_label": "Offensive"},
    )
    fields.update(overrides)
    return Record(**fields)


def test_write_read_round_trip(tmp_path):
    records = [make_record(), make_record(id="v2", label=0, media=None, extra={})]
    path = tmp_path / "mhc" / "test.jsonl"
    assert write_manifest(path, records) == 2
    assert read_manifest(path) == records
    assert not list(tmp_path.rglob("*.tmp"))
    assert records[0].media_path(path.parent) == path.parent / "videos" / "v1.mp4"


def _write_lines(path, *objects):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("label"), r"missing field\(s\) \['label'\]"),
        (
            lambda o: o.update(colour="red"),
            r"unknown field\(s\) \['colour'\]; put dataset-specific fields under 'extra'",
        ),
        (lambda o: o.update(label="1"), "field 'label' must be int"),
        (lambda o: o.update(label=True), "field 'label' must be int"),
        (lambda o: o.update(modality="audio"), "modality must be one of"),
        (lambda o: o.update(split="dev"), "split must be one of"),
        (lambda o: o.update(label_space="toxic"), "label_space must be one of"),
        (lambda o: o.update(id=""), "empty id"),
    ],
)
def test_schema_errors_name_file_and_line(tmp_path, mutate, message):
    good = make_record().to_json()
    bad = make_record().to_json()
    mutate(bad)
    path = _write_lines(tmp_path / "test.jsonl", good, bad)
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(path)
    assert f"{path}:2" in str(info.value)


def test_invalid_json_names_line(tmp_path):
    path = _write_lines(tmp_path / "train.jsonl", make_record().to_json(), "", "{not json")
    with pytest.raises(ManifestError, match=rf"{path}:3: not valid JSON"):
        read_manifest(path)


def test_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(ManifestError, match="m2v-bench prepare"):
        read_manifest(tmp_path / "nope.jsonl")


def test_label_outside_label_space_is_readable(tmp_path):
    """The schema accepts any int label so `validate` can report it with the sample id."""
    path = tmp_path / "test.jsonl"
    write_manifest(path, [make_record(label=2)])
    assert read_manifest(path)[0].label == 2


def test_split_hash_ignores_order_media_and_extra():
    a, b = make_record(), make_record(id="v2", label=0, text="bye")
    assert split_hash([a, b]) == split_hash([replace(b, media=None), replace(a, extra={}, media="x.mp4")])


@pytest.mark.parametrize("change", [{"label": 0}, {"text": "hello!"}, {"id": "v9"}])
def test_split_hash_changes_with_ids_labels_text(change):
    a = make_record()
    assert split_hash([a]) != split_hash([replace(a, **change)])


def test_split_hash_is_stable_across_versions():
    """A golden value: the hash identifies test sets in the leaderboard, so it must never drift."""
    records = [make_record(), make_record(id="v2", label=0, text="caf\u00e9")]
    assert split_hash(records) == "1a573c3687a9dd532751d81ba6d7eda1ae1bb6bb7b776617962120639b1e8f81"
    # the documented rule: sha256 over the sorted (id, label, text) triples, one JSON array per line
    lines = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in sorted((r.id, r.label, r.text) for r in records))
    assert split_hash(records) == hashlib.sha256(lines.encode("utf-8")).hexdigest()
