"""The leaderboard: real lmms-eval outputs of tiny models on the sample data, crafted bad submissions, concurrency,
the published rows, and the site in headless Chromium."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EVALUATED_TASKS
from PIL import Image

from m2v_bench.cli import main
from m2v_bench.leaderboard import views
from m2v_bench.leaderboard.published import TOLERANCE, published_rows
from m2v_bench.leaderboard.site import build
from m2v_bench.leaderboard.store import Store
from m2v_bench.leaderboard.submit import SubmissionError, read_samples, submit
from m2v_bench.metrics import auroc, classification_metrics, macro_f1_ci, mcnemar_p

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TASKS = EVALUATED_TASKS


@pytest.fixture(scope="module")
def runs(evaluated):
    return evaluated


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "lb.sqlite")
    yield store
    store.close()


@pytest.mark.slow
@pytest.mark.smoke
def test_real_submissions_are_recomputed_and_ranked(runs, store, tmp_path):
    base_rows = submit(store, str(runs["base"]), runs["base_out"], runs["prepared"])
    ft_rows = submit(store, str(runs["adapter"]), runs["adapter_out"], runs["prepared"], name="lnv-vid-ft")
    assert {r["task"] for r in ft_rows} == set(TASKS.split(","))
    for row in base_rows:
        log = next(runs["base_out"].rglob(f"*_samples_{row['task']}.jsonl"))
        items = read_samples(log)
        golds, preds = np.array([i["gold"] for i in items]), np.array([i["pred"] for i in items])
        expected = classification_metrics(golds, preds)
        assert {k: row[k] for k in expected} == pytest.approx(expected)
        assert (row["macro_f1_low"], row["macro_f1_high"]) == pytest.approx(macro_f1_ci(golds, preds))
        assert row["macro_f1_low"] <= row["macro_f1"] <= row["macro_f1_high"]
    assert {(r["test_set"], r["n"]) for r in base_rows} == {("sample", 40)}
    base_name = runs["base"].name
    subs = {s.name: s for s in store.submissions()}
    assert subs[base_name].strategy == "no_ft" and subs["lnv-vid-ft"].strategy == "vid_ft"
    assert {s.status for s in subs.values()} == {"self-reported"}
    # the sample data's rows are never compared with the paper's: they are on the sample board only
    assert views.ranking(store) == [] and len(views.substitution(store).frame) == 14
    rankings = {t.title: t for t in views.ranking(store, "sample")}
    ranks = rankings["Ranking on m2v_mhc (self-reported)"].frame.set_index("Submission")
    p = mcnemar_p(store.predictions("lnv-vid-ft", "m2v_mhc"), store.predictions(base_name, "m2v_mhc"))
    assert ranks.loc["lnv-vid-ft", "Strategy"] == "Vid-FT" and p is not None
    assert ranks.loc["lnv-vid-ft", "McNemar p vs No-FT"] == pytest.approx(p)
    assert (ranks.loc["lnv-vid-ft", "n"], ranks.loc["lnv-vid-ft", "Test set"]) == (40, "sample")
    score_items = read_samples(next(runs["base_out"].rglob("*_samples_m2v_mhc_score.jsonl")))
    expected_auroc = auroc([i["gold"] for i in score_items], [i["score"] for i in score_items])
    scores = rankings["Ranking on m2v_mhc_score (self-reported)"].frame.set_index("Submission")
    assert scores.loc[base_name, "AUROC"] == pytest.approx(expected_auroc)
    table = views.substitution(store, "sample").frame.set_index("Source")
    assert table.loc["self-reported: lnv-vid-ft", "Strategy"] == "Vid-FT"
    assert table.loc["self-reported: lnv-vid-ft", "MHC n"] == 40
    assert table.loc["self-reported: lnv-vid-ft", "Test set"] == "sample"


@pytest.fixture
def bad(runs, tmp_path):
    """A copy of the base model's output folder, to break."""
    out = Path(shutil.copytree(runs["base_out"], tmp_path / "out"))
    log = next(out.rglob("*_samples_m2v_mhc.jsonl"))
    return out, log


def _rewrite(log: Path, edit) -> None:
    lines = log.read_text().splitlines()
    log.write_text("\n".join(edit(lines)) + "\n")


def _retarget(line: str, **changes) -> str:
    sample = json.loads(line)
    for metric in ("accuracy", "macro_f1", "f1", "precision", "recall", "invalid_rate"):
        sample[metric] = {**sample[metric], **changes}
    return json.dumps(sample)


BAD_CASES = {
    "missing id": (lambda lines: lines[:-1], "1 missing test id"),
    "extra id": (lambda lines: [*lines, _retarget(lines[0], id="not-a-test-id")], "1 unknown test id"),
    "duplicate id": (lambda lines: [*lines, lines[0]], "1 duplicate test id"),
    "wrong test hash": (lambda lines: [_retarget(line, test_sha256="0" * 64) for line in lines], "another test set"),
    "NaN": (
        lambda lines: [lines[0].replace('"gold": 0', '"gold": NaN').replace('"gold": 1', '"gold": NaN'), *lines[1:]],
        "not a finite number",
    ),  # fmt: skip
    "wrong gold": (
        lambda lines: [_retarget(lines[0], gold=1 - json.loads(lines[0])["macro_f1"]["gold"]), *lines[1:]],
        "gold labels differ",
    ),  # fmt: skip
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_submissions_are_rejected_and_nothing_is_stored(bad, runs, store, case):
    out, log = bad
    edit, message = BAD_CASES[case]
    _rewrite(log, edit)
    with pytest.raises(SubmissionError, match=message):
        submit(store, str(runs["base"]), out, runs["prepared"])
    assert store.submissions() == [] and store.results() == []


@pytest.mark.slow
def test_truncated_log_unknown_task_and_path_names(bad, runs, store):
    out, log = bad
    log.write_bytes(log.read_bytes()[:-40])
    with pytest.raises(SubmissionError, match="truncated"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    shutil.copy(next(runs["base_out"].rglob("*_samples_m2v_mhc.jsonl")), log)
    shutil.copy(log, log.with_name(log.name.replace("m2v_mhc", "m2v_toxicity")))
    with pytest.raises(SubmissionError, match="unknown task 'm2v_toxicity'"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    for name in ("../evil", "a/b", ".hidden", ""):
        with pytest.raises(SubmissionError, match="no paths"):
            submit(store, str(runs["base"]), runs["base_out"], runs["prepared"], name=name or "/")
    assert store.submissions() == []


@pytest.mark.slow
def test_tampered_results_json_is_ignored_and_a_taken_name_is_never_overwritten(bad, runs, store):
    out, _ = bad
    results = next(out.rglob("*_results.json"))
    data = json.loads(results.read_text())
    data["results"]["m2v_mhc"]["macro_f1,none"] = 0.99
    results.write_text(json.dumps(data))
    first = submit(store, str(runs["base"]), out, runs["prepared"], name="tampered")
    stored = {r["task"]: r["macro_f1"] for r in store.results()}
    assert stored["m2v_mhc"] != 0.99 and stored == {r["task"]: r["macro_f1"] for r in first}
    # the same name again: rejected, and the stored row is intact
    with pytest.raises(SubmissionError, match="name 'tampered' is taken"):
        submit(store, str(runs["adapter"]), runs["adapter_out"], runs["prepared"], name="tampered")
    assert [(s.name, s.version, s.strategy) for s in store.submissions()] == [("tampered", 1, "no_ft")]
    assert {r["task"]: r["macro_f1"] for r in store.results()} == stored and store.history("tampered") == []
    # explicitly: a new version, the old one kept in the history
    submit(store, str(runs["adapter"]), runs["adapter_out"], runs["prepared"], name="tampered", replace=True)
    assert [(s.name, s.version, s.strategy) for s in store.submissions()] == [("tampered", 2, "vid_ft")]
    (old,) = store.history("tampered")
    assert old["version"] == 1 and old["submission"]["strategy"] == "no_ft"
    assert {r["task"]: r["macro_f1"] for r in old["results"]} == stored
    assert len(store.results()) == 3


def _submit_one(args):
    db, checkpoint, out, prepared, name = args
    store = Store(db)
    try:
        submit(store, checkpoint, Path(out), Path(prepared), name=name)
    finally:
        store.close()
    return name


def _open_store(path) -> str | None:
    try:
        Store(path).close()
    except Exception as exc:  # noqa: BLE001 - the test reports every failure it sees
        return str(exc)
    return None


def test_eight_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    # Two races seen in CI: the WAL switch answered "database is locked" without waiting, and a migration
    # committed between reading user_version and listing the tables made a new file look foreign.
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        failures = []
        for round_ in range(30):
            path = tmp_path / f"new{round_}.sqlite"
            failures += [f for f in pool.map(_open_store, [path] * 8) if f]
    assert failures == []


@pytest.mark.slow
def test_eight_concurrent_submitters_lose_nothing(runs, tmp_path):
    db = tmp_path / "concurrent.sqlite"
    jobs = [(db, str(runs["base"]), str(runs["base_out"]), str(runs["prepared"]), f"sub{i}") for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        done = pool.map(_submit_one, jobs)
    store = Store(db)
    assert sorted(done) == sorted(s.name for s in store.submissions()) == [f"sub{i}" for i in range(8)]
    assert len(store.results()) == 8 * 3
    store.close()


def test_published_rows_reproduce_the_papers_tables():
    rows = published_rows()
    assert len([r for r in rows if r.table == "table3_substitution"]) == 24
    assert len([r for r in rows if r.table == "table4_augmentation"]) == 8
    # The two rows quoted from other papers (other setups) have no confusion matrix on these test sets.
    inconsistent = [(r.strategy, r.target) for r in rows if not r.consistent]
    assert inconsistent == [("Best-published(MHC paper)", "MHC"), ("Best-published(HateMM paper)", "HateMM")]
    for row in rows:
        deviation = max(abs(row.recomputed[m] - row.metrics[m]) for m in ("accuracy", "macro_f1", "f1"))
        assert deviation <= (TOLERANCE + 1e-9 if row.consistent else 0.015), (row, deviation)
        assert sum(row.confusion.values()) == {"MHC": 200, "HateMM": 220}[row.target]
        positives = row.confusion["tp"] + row.confusion["fn"]
        assert positives == {"MHC": 67, "HateMM": 96}[row.target]
    sub = views.substitution(Store(":memory:"))
    assert len(sub.frame) == 14  # 2 models x (No-FT, Vid-FT x2 targets, OM/RM-FT x FHM/MAMI)
    assert list(sub.frame.columns[:2]) == ["Model", "Family"]
    assert set(zip(sub.frame["Model"], sub.frame["Family"], strict=True)) == {
        ("LLaMA-3.2-11B", "mllama"),
        ("LLaVA-NeXT-Video-7B", "llava_next_video"),
    }  # the paper's own names on its own rows only
    assert list(sub.frame.columns[6:]) == [
        f"{t} {m}" for t in ("MHC", "HateMM") for m in ("Acc", "M-F1", "F1", "R", "P", "M-F1 95% CI", "n")
    ]
    assert set(sub.frame["Test set"]) == {"paper"} and set(sub.frame["MHC n"]) - {None} == {200}


def test_tables_render_in_three_formats():
    table = views.augmentation(Store(":memory:"))
    markdown, csv_text, latex = (views.render(table, s) for s in ("markdown", "csv", "latex"))
    assert "**0.820**" in markdown and "Vid+RM-FT" in csv_text and "\\begin{tabular}" in latex
    assert "0.820" in latex and "Vid+RM-FT" in latex


HOSTILE = {
    "Model": "a|b *c* <script>alert(1)</script> [l](http://x) `code` ~~s~~ &amp;",
    "Strategy": '=HYPERLINK("http://x")',
    "Fine-tune data": "|}\\input{/etc/passwd}\\def\\x{1}$x$%",
    "Source": "@SUM(A1)",
    "MHC Acc": 0.5,
}


def test_no_output_format_carries_live_markup():
    import pandas as pd

    from m2v_bench.leaderboard.site import page, table_context

    table = views.Table("Title | <b>x</b>", pd.DataFrame([HOSTILE, {**HOSTILE, "Strategy": "+1", "Source": "-1"}]))
    markdown = views.render(table, "markdown")
    rows = [line for line in markdown.splitlines() if line.startswith("| a")]
    assert len(rows) == 2 and all(line.count(" | ") == 4 for line in rows)  # five cells: no pipe broke out
    assert "<script>" not in markdown and "\\<script\\>" in markdown and "\\[l\\]" in markdown
    assert "\\*c\\*" in markdown and "\\`code\\`" in markdown and "&amp;amp;" in markdown
    import csv
    import io

    cells = [c for row in csv.reader(io.StringIO(views.render(table, "csv"))) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], cells
    latex = views.render(table, "latex")
    assert "\\input" not in latex and "\\def" not in latex and "\\textbackslash input\\{" in latex
    assert "\\$x\\$\\%" in latex
    html_page = page("t", tables=[table_context(table, "t")])
    assert "<script>alert" not in html_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_page
    assert "<b>x</b>" not in html_page


def test_cli_rejects_a_bad_name_in_one_line(runs, tmp_path, capsys):
    code = main(["leaderboard", "--db", str(tmp_path / "lb.sqlite"), "submit", str(runs["base"]), "--results",
                 str(runs["base_out"]), "--name", "../x", "--data-dir", str(runs["prepared"])])  # fmt: skip
    assert code == 2 and capsys.readouterr().err.startswith("m2v-bench: error: name '../x'")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.mark.slow
def test_site_in_headless_chromium(runs, store, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    submit(store, str(runs["base"]), runs["base_out"], runs["prepared"])
    submit(store, str(runs["adapter"]), runs["adapter_out"], runs["prepared"], name="lnv-vid-ft")
    site = tmp_path / "site"
    build(store, site)
    shot = tmp_path / "substitution.png"
    common = [chromium, *CHROMIUM_FLAGS, "--enable-logging=stderr", "--v=0", "--window-size=1400,1000"]
    page = (site / "substitution.html").as_uri()
    dom = subprocess.run([*common, f"--user-data-dir={tmp_path / 'u1'}", "--dump-dom", page],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    subprocess.run([*common, f"--user-data-dir={tmp_path / 'u2'}", f"--screenshot={shot}", page],
                   capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    body = re.search(r'<table id="substitution".*?<tbody>(.*?)</tbody>', dom.stdout, re.S).group(1)
    assert len(re.findall(r"<tr", body)) == 14  # the published rows: the sample-data submissions are not there
    sample = (site / "sample.html").read_text()
    body = re.search(r'<table id="sample-0".*?<tbody>(.*?)</tbody>', sample, re.S).group(1)
    assert len(re.findall(r'<tr class="self-reported"', body)) == 2
    assert "self-reported: lnv-vid-ft" in body and "LLaVA-NeXT-Video-7B" not in body  # the paper's name: its rows only
    assert f"{runs['base'].name} (local) + {runs['adapter'].name} (local)" in body
    assert shot.stat().st_size > 10_000
    assert np.asarray(Image.open(shot)).std() > 10  # not a blank page


def test_site_builds_from_the_published_rows_alone(tmp_path):
    """Every page renders (the templates are strict about missing values) before anything is submitted."""
    pages = build(Store(":memory:"), tmp_path / "site")
    assert sorted(p.name for p in pages) == [
        "augmentation.html",
        "index.html",
        "ranking.html",
        "sample.html",
        "substitution.html",
    ]
    substitution_page = (tmp_path / "site" / "substitution.html").read_text()
    assert (
        substitution_page.count('<tr class="published">') == 14
        and "No submission on the paper" in (tmp_path / "site" / "ranking.html").read_text()
    )
    csv_header = (tmp_path / "site" / "substitution.csv").read_text().splitlines()[0]
    assert csv_header.startswith("Model,Family,Strategy,Fine-tune data,Source")


# ------------------------------------------------------------------------------------- cheating and damage


def _edit_samples(log: Path, edit) -> None:
    """Apply ``edit(record)`` to every metric's copy of each per-sample record."""
    lines = []
    for line in log.read_text().splitlines():
        sample = json.loads(line)
        for metric in ("accuracy", "macro_f1", "f1", "precision", "recall", "invalid_rate", "macro_f1_strict",
                       "media_error_rate"):  # fmt: skip
            if metric in sample:
                edit(sample[metric])
        lines.append(json.dumps(sample))
    log.write_text("\n".join(lines) + "\n")


def _perfect(record: dict) -> None:
    record["pred"] = record["gold"]


def _perfect_with_answers(record: dict) -> None:
    record["pred"] = record["gold"]
    record["response"] = ["non-offensive", "offensive"][record["gold"]]


@pytest.mark.slow
def test_forged_predictions_are_rejected(bad, runs, store):
    """Every pred set to gold, the response left as the model wrote it: the current parser disagrees."""
    out, log = bad
    _edit_samples(log, _perfect)
    with pytest.raises(SubmissionError, match="logged pred 1 but the response parses to|logged pred 0 but"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    assert store.submissions() == []


@pytest.mark.slow
def test_a_consistent_forgery_stays_self_reported_below_the_verified_rows(bad, runs, store):
    """Forged answers that parse to the forged preds cannot be told from a real run: they are accepted only as
    self-reported, shown below the verified rows, never marked best and ranked apart."""
    submit(store, str(runs["base"]), runs["base_out"], runs["prepared"], name="honest", status="verified")
    out, log = bad
    _edit_samples(log, _perfect_with_answers)
    submit(store, str(runs["base"]), out, runs["prepared"], name="forged")
    table = views.substitution(store, "sample")
    sources = list(table.frame["Source"])
    assert sources == ["verified: honest", "self-reported: forged"]
    assert table.frame.loc[1, "MHC M-F1"] == 1.0 and (1, "MHC M-F1") not in table.best
    assert (0, "MHC M-F1") in table.best
    rankings = {t.title: list(t.frame["Submission"]) for t in views.ranking(store, "sample")}
    assert rankings["Ranking on m2v_mhc (verified)"] == ["honest"]
    assert rankings["Ranking on m2v_mhc (self-reported)"] == ["forged"]
    titles = [t.title for t in views.ranking(store, "sample")]
    assert titles.index("Ranking on m2v_mhc (verified)") < titles.index("Ranking on m2v_mhc (self-reported)")


@pytest.mark.slow
def test_a_hand_written_provenance_is_no_checkpoint(runs, store, tmp_path):
    fake = tmp_path / "llama-rm-ft"
    fake.mkdir()
    provenance = json.loads((runs["adapter"] / "m2v_provenance.json").read_text())
    (fake / "m2v_provenance.json").write_text(json.dumps({**provenance, "strategy": "rm_ft", "meme_source": "fhm"}))
    with pytest.raises(SubmissionError, match="without adapter weights"):
        submit(store, str(fake), runs["adapter_out"], runs["prepared"])
    assert store.submissions() == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "field"),
    [({"video_fraction": "abc"}, "video_fraction"), ({"family": "gpt5"}, "family"),
     ({"strategy": "magic"}, "strategy"), ({"target": "fhm"}, "target"), ({"meme_source": "fhm"}, "meme_source"),
     ({"base_model": 7}, "base_model")],
)  # fmt: skip
def test_a_malformed_provenance_is_rejected_naming_the_field(runs, store, tmp_path, change, field):
    adapter = Path(shutil.copytree(runs["adapter"], tmp_path / "adapter"))
    provenance = json.loads((adapter / "m2v_provenance.json").read_text())
    (adapter / "m2v_provenance.json").write_text(json.dumps({**provenance, **change}))
    with pytest.raises(SubmissionError, match=f"provenance field '{field}'"):
        submit(store, str(adapter), runs["adapter_out"], runs["prepared"])
    assert store.submissions() == []


@pytest.mark.slow
def test_the_runs_results_json_must_exist_and_agree(bad, runs, store):
    out, _ = bad
    results = next(out.rglob("*_results.json"))
    original = results.read_text()
    data = json.loads(original)
    data["configs"]["m2v_mhc"]["metadata"]["prompt_version"] = 0
    results.write_text(json.dumps(data))
    with pytest.raises(SubmissionError, match="m2v_mhc prompt_version 0, current 1"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    data = json.loads(original)
    data["versions"]["m2v_hatemm"] = 1
    results.write_text(json.dumps(data))
    with pytest.raises(SubmissionError, match="m2v_hatemm version 1, current 2"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    results.write_text(original)
    # the base model's run, submitted as the adapter's
    with pytest.raises(SubmissionError, match="not the submitted checkpoint"):
        submit(store, str(runs["adapter"]), out, runs["prepared"])
    results.unlink()
    with pytest.raises(SubmissionError, match="_results.json: missing"):
        submit(store, str(runs["base"]), out, runs["prepared"])
    assert store.submissions() == []


@pytest.mark.slow
def test_the_newest_run_counts_by_its_timestamp(bad, runs, store):
    """Two runs in one folder: the one lmms-eval stamped later wins, whatever the files' order or mtimes."""
    out, log = bad
    folder = log.parent
    stamp = log.name.split("_samples_")[0]
    for path in list(folder.glob(f"{stamp}_*")):  # an older run with a forged log, written last
        older = path.with_name(path.name.replace(stamp, "19990101_000000"))
        shutil.copy(path, older)
    _edit_samples(folder / log.name.replace(stamp, "19990101_000000"), _perfect)
    rows = submit(store, str(runs["base"]), out, runs["prepared"], name="newest")
    honest = read_samples(log)
    expected = classification_metrics([i["gold"] for i in honest], [i["pred"] for i in honest])["macro_f1"]
    assert {r["task"]: r["macro_f1"] for r in rows}["m2v_mhc"] == pytest.approx(expected)
    for path in list(folder.glob(f"{stamp}_*")):  # now the forged run is the newer one
        path.rename(path.with_name(path.name.replace(stamp, "29991231_235959")))
    _edit_samples(folder / log.name.replace(stamp, "29991231_235959"), _perfect)
    with pytest.raises(SubmissionError, match="parses to"):
        submit(store, str(runs["base"]), out, runs["prepared"], name="newer")


def test_a_damaged_row_is_reported_and_never_breaks_a_build(tmp_path):
    """Rows that an older version stored unchecked (a text video_fraction, a damaged provenance, a text metric)."""
    from m2v_bench.leaderboard.store import Submission

    store = Store(tmp_path / "lb.sqlite")
    row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0" * 64, "test_set": "paper", "n": 2,
           "accuracy": 0.5, "macro_f1": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5, "invalid_rate": 0.0,
           "auroc": None, "macro_f1_low": 0.1, "macro_f1_high": 0.9}  # fmt: skip
    preds = {"m2v_mhc": [{"id": "a", "gold": 0, "pred": 0}, {"id": "b", "gold": 1, "pred": 0}]}
    for name in ("good", "bad"):
        sub = Submission(name, "llava_next_video", "vid_ft", "mhc", None, "tiny", 0.5, {"family": "x"})
        store.put(sub, [row], preds)
    store.db.execute("UPDATE submissions SET video_fraction = 'abc', provenance = '{oops' WHERE name = 'bad'")
    store.db.execute("UPDATE results SET macro_f1 = 'x', n = 'y' WHERE name = 'bad'")
    pages = build(store, tmp_path / "site")
    assert len(pages) == 5
    sub = views.substitution(store)
    assert "verified: good" not in set(sub.frame["Source"]) and "self-reported: good" in set(sub.frame["Source"])
    assert any("malformed row ('bad')" in note for note in sub.notes)
    (rank,) = views.ranking(store)
    assert list(rank.frame["Submission"]) == ["good"] and any("'bad'" in n for n in rank.notes)
    assert "Left out a malformed row" in (tmp_path / "site" / "substitution.html").read_text()
    store.close()


def test_cli_show_board_and_history(tmp_path, capsys):
    from m2v_bench.leaderboard.store import Submission

    db = tmp_path / "lb.sqlite"
    store = Store(db)
    row = {"task": "m2v_mhc", "dataset": "mhc", "test_sha256": "0" * 64, "test_set": "sample", "n": 2,
           "accuracy": 0.5, "macro_f1": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5, "invalid_rate": 0.0,
           "auroc": None, "macro_f1_low": 0.1, "macro_f1_high": 0.9}  # fmt: skip
    preds = {"m2v_mhc": [{"id": "a", "gold": 0, "pred": 0}, {"id": "b", "gold": 1, "pred": 0}]}
    sub = Submission("=cmd", "llava_next_video", "vid_ft", "mhc", None, "tiny", None, {})
    store.put(sub, [row], preds)
    store.put(sub, [{**row, "macro_f1": 0.25}], preds, replace=True)
    store.close()
    assert main(["leaderboard", "--db", str(db), "show", "--view", "ranking", "--board", "sample", "--format",
                 "csv"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "'=cmd,tiny (local),llava_next_video,Vid-FT,self-reported,sample,2,0.250" in out
    assert main(["leaderboard", "--db", str(db), "history", "=cmd"]) == 0
    out = capsys.readouterr().out
    assert "version 1 (self-reported, replaced" in out and "m2v_mhc 0.500" in out and "version 2" in out


def test_an_old_store_is_upgraded_without_losing_or_mislabelling_rows(tmp_path):
    """A store written before versions/statuses/test sets: its rows stay, self-reported, on the right board."""
    import sqlite3

    from m2v_bench.data_dir import paper_test_hash
    from m2v_bench.leaderboard.store import MIGRATIONS

    db = sqlite3.connect(tmp_path / "old.sqlite", isolation_level=None)
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    for name, test_hash in (("on-paper", paper_test_hash("mhc")), ("on-sample", "f" * 64)):
        db.execute("INSERT INTO submissions (name, family, strategy, base_model, provenance) VALUES "
                   "(?, 'mllama', 'no_ft', 'b', '{}')", (name,))  # fmt: skip
        db.execute("INSERT INTO results VALUES (?, 'm2v_mhc', 'mhc', ?, 200, .5, .5, .5, .5, .5, 0, NULL, .4, .6)",
                   (name, test_hash))  # fmt: skip
    db.close()
    store = Store(tmp_path / "old.sqlite")
    assert {r["name"]: r["test_set"] for r in store.results()} == {"on-paper": "paper", "on-sample": "custom"}
    assert {(s.name, s.status, s.version) for s in store.submissions()} == {
        ("on-paper", "self-reported", 1), ("on-sample", "self-reported", 1)}  # fmt: skip
    sources = set(views.substitution(store).frame["Source"])
    assert "self-reported: on-paper" in sources and "self-reported: on-sample" not in sources
    store.close()
