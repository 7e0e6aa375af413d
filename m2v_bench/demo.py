"""``m2v-bench demo``: the paper in miniature on the embedded default -- synthetic data -> prepare -> validate ->
re-annotation -> LoRA training of every strategy through the real recipes -> lmms-eval -> leaderboard.

Every stage runs the same code a user runs on real data; only the configuration differs (tiny models, the synthetic
label-shift data, a few epochs). The human votes of the re-annotation come from the annotator file written with the
sample data (it labels every meme by the video datasets' definition), standing in for people. A stage that fails
stops the run with its message.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from m2v_bench import reannotate as re_
from m2v_bench.atomic import check_folder_target
from m2v_bench.errors import M2VError
from m2v_bench.registry import TRAINED_STRATEGIES, video_targets
from m2v_bench.sample_data import SampleDataConfig, make_sample_data, prepare_sample_data
from m2v_bench.settings import DATA_DIR_ENV, available_cores
from m2v_bench.testing.tiny import TINY_BUILDERS, build_tiny
from m2v_bench.validate import validate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    families: tuple[str, ...] = ("llava_next_video", "mllama")
    targets: tuple[str, ...] = field(default_factory=video_targets)
    meme_source: str = "fhm"
    epochs: int = 20
    shots: int = 2
    """Demonstrations per re-annotation prompt (the paper: 8; the tiny tokenizer makes 8 long and slow on a CPU)."""
    seed: int = 0
    jobs: int = max(1, min(4, available_cores()))
    """Trainings / evaluations run at once (one CPU thread each)."""

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(families=("llava_next_video",), targets=("mhc",), epochs=3)


def _recipes() -> Path:
    recipes = Path(__file__).resolve().parent.parent / "recipes"
    if not (recipes / "vid_ft.py").is_file():
        raise M2VError(f"{recipes}: the recipes are not here; run the demo from a source checkout (make demo)")
    return recipes


def _run(cmd: list[str], log: Path, env: dict) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        result = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise M2VError(f"`{' '.join(cmd[:3])} ...` failed (exit {result.returncode}); see {log}:\n" + "\n".join(tail))


def _run_all(jobs: list[tuple[str, Callable[[], None]]], workers: int) -> None:
    """Run independent jobs ``workers`` at a time, printing each as it ends. The first failure cancels the jobs not
    yet started, lets the running ones end, and is raised."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        started = time.time()
        futures = {pool.submit(job): name for name, job in jobs}
        try:
            for future in as_completed(futures):
                future.result()
                logger.info(f"      {futures[future]}: done at {time.time() - started:.0f} s")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class Demo:
    def __init__(self, out: Path, config: DemoConfig):
        self.out = out.resolve()
        self.config = config
        self.raw, self.prepared = out / "raw", out / "prepared"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    DATA_DIR_ENV: str(self.prepared)}  # fmt: skip
        self.bin = Path(sys.executable).parent
        self.stages = [
            ("make the synthetic raw datasets", self.make_data),
            ("prepare the manifests", self.prepare),
            ("validate", self.validate),
            ("build the tiny models", self.models),
            ("re-annotate the memes", self.reannotate),
            ("train every strategy (LoRA, TRL)", self.train),
            ("evaluate with lmms-eval", self.evaluate),
            ("submit to the leaderboard", self.submit),
        ]

    def run(self) -> None:
        start = time.time()
        for number, (title, stage) in enumerate(self.stages, start=1):
            t0 = time.time()
            logger.info(f"[{number}/{len(self.stages)}] {title} ...")
            stage()
            logger.info(f"      done in {time.time() - t0:.0f} s")
        self.report()
        logger.info(f"demo finished in {time.time() - start:.0f} s; site: {self.out / 'site' / 'index.html'}")

    # -- stages

    def make_data(self) -> None:
        make_sample_data(self.raw, SampleDataConfig(seed=self.config.seed))

    def prepare(self) -> None:
        for name, result in prepare_sample_data(self.raw, self.prepared).items():
            logger.info(f"      {name}: {len(result.records)} samples")

    def validate(self) -> None:
        report = validate(self.prepared, progress=False)
        if report.errors:
            raise M2VError(f"{len(report.errors)} validation error(s), e.g. {report.errors[0]}")

    def models(self) -> None:
        for family in self.config.families:
            build_tiny(family, self.out / "models" / family)

    def reannotate(self) -> None:
        # the model stack is imported by the stages that run a model, for start-up time (`m2v-bench --help`)
        from m2v_bench.models.generation import Generator
        from m2v_bench.models.loading import load

        memes_path = self.prepared / self.config.meme_source / "train.jsonl"
        memes = re_.load_memes(memes_path)
        generator = Generator(load(str(self.out / "models" / self.config.families[0])), batch_size=16)
        for target in self.config.targets:
            work = self.out / "reannotation" / f"{self.config.meme_source}_{target}"
            predictions = re_.predict(memes, target, generator, work / "predictions.jsonl", shots=self.config.shots,
                                      progress=False)  # fmt: skip
            queue = re_.conflicts(memes, predictions)
            re_.write_queue(queue, predictions, target, work / "queue.csv", work / "queue.json")
            answers = self._annotate(work, target, {m.id for m in queue})
            human = re_.import_answers([answers], [m.id for m in queue], target)
            result = re_.vote(memes, predictions, human, target)
            if result.unresolved:
                raise M2VError(f"{len(result.unresolved)} conflicts unresolved for {target}")
            re_.write_aligned(self.prepared, result, memes_path, self.config.meme_source, target)
            stats = re_.agreement_stats(result.rows)
            logger.info(f"      -> {target}: {len(queue)} of {len(memes)} memes to annotate; labels flipped "
                  f"{stats['flips']['0->1'] + stats['flips']['1->0']}")  # fmt: skip

    def _annotate(self, work: Path, target: str, queued: set[str]) -> Path:
        """The synthetic annotators answer the queue from the sample data's annotator file."""
        source = self.raw / "annotators" / f"{self.config.meme_source}_{target}.csv"
        answers = work / "answers.csv"
        with (
            open(source, encoding="utf-8", newline="") as src,
            open(answers, "w", encoding="utf-8", newline="") as dst,
        ):
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, lineterminator="\n")
            writer.writeheader()
            writer.writerows(row for row in reader if row["id"] in queued)
        return answers

    def _checkpoint(self, family: str, strategy: str, target: str) -> Path:
        return self.out / "checkpoints" / f"{family}-{strategy}-{target}"

    def train(self) -> None:
        recipes = _recipes()
        jobs = []
        for family in self.config.families:
            for target in self.config.targets:
                for strategy in TRAINED_STRATEGIES:
                    out = self._checkpoint(family, strategy, target)
                    cmd = [str(self.bin / "python"), str(recipes / f"{strategy}.py"),
                           "--config", str(recipes / "tiny" / f"{family}.yaml"),
                           "--model_name_or_path", str(self.out / "models" / family), "--data_dir", str(self.prepared),
                           "--target", target, "--meme_source", self.config.meme_source, "--output_dir", str(out),
                           "--num_train_epochs", str(self.config.epochs), "--save_strategy", "no"]  # fmt: skip
                    log = self.out / "logs" / f"train-{out.name}.log"
                    jobs.append((out.name, lambda cmd=cmd, log=log: _run(cmd, log, self.env)))
        _run_all(jobs, self.config.jobs)

    def _evaluated(self) -> list[tuple[str, Path, Path, list[str]]]:
        """(name, checkpoint, lmms-eval output, targets) of every model evaluated: each family's No-FT on every
        target, and every adapter on the target it was trained for (the paper's tables)."""
        runs = []
        for family in self.config.families:
            runs.append((f"{family}-no_ft", self.out / "models" / family, self.out / "eval" / f"{family}-no_ft",
                         list(self.config.targets)))  # fmt: skip
            for target in self.config.targets:
                for strategy in TRAINED_STRATEGIES:
                    checkpoint = self._checkpoint(family, strategy, target)
                    runs.append((checkpoint.name, checkpoint, self.out / "eval" / checkpoint.name, [target]))
        return runs

    def evaluate(self) -> None:
        _run_all([(name, lambda args=args: self._evaluate(*args)) for name, *args in self._evaluated()],
                 self.config.jobs)  # fmt: skip

    def _evaluate(self, checkpoint: Path, out: Path, targets: list[str]) -> None:
        tasks = ",".join(f"m2v_{t}" for t in targets)
        cmd = [str(self.bin / "lmms-eval"), "--model", "m2v", "--model_args", f"pretrained={checkpoint},frames=4",
               "--tasks", tasks, "--device", "cpu", "--batch_size", "16", "--output_path", str(out),
               "--log_samples"]  # fmt: skip
        log = self.out / "logs" / f"eval-{out.name}.log"
        _run(cmd, log, self.env)
        if not list(out.rglob("*_results.json")):  # lmms-eval's own errors exit 0: the results file is the proof
            raise M2VError(f"lmms-eval wrote no results for {out.name}; see {log}")

    def submit(self) -> None:
        # the leaderboard (pandas, pydantic) is imported by the stages that use it, for start-up time
        from m2v_bench.leaderboard.site import build
        from m2v_bench.leaderboard.store import Store
        from m2v_bench.leaderboard.submit import submit

        store = Store(self.out / "leaderboard.sqlite")
        try:
            for name, checkpoint, out, _ in self._evaluated():
                # the demo's own runs: a re-run of the demo replaces them (a new version; the old one kept in history)
                submit(store, str(checkpoint), out, self.prepared, name=name, replace=True)
            build(store, self.out / "site")
        finally:
            store.close()

    def report(self) -> None:
        """The tables, read back from the leaderboard database."""
        from m2v_bench.leaderboard import views  # start-up time: see submit
        from m2v_bench.leaderboard.store import Store

        store = Store(self.out / "leaderboard.sqlite")
        try:
            # the synthetic sample data's results are on the sample board, away from the paper's rows
            for table in (views.substitution(store, "sample"), views.augmentation(store, "sample")):
                logger.info("\n%s", views.render(table, "markdown"))
        finally:
            store.close()


def run(
    out: Path,
    quick: bool = False,
    seed: int = 0,
    jobs: int | None = None,
    families: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> None:
    """The demo; ``families`` / ``targets`` narrow the default (or ``quick``) selection."""
    if jobs is not None and jobs < 1:
        raise M2VError(f"--jobs {jobs}: the demo needs at least 1 job at a time")
    config = DemoConfig.quick() if quick else DemoConfig()
    overrides: dict = {"seed": seed} | ({"jobs": jobs} if jobs is not None else {})
    if families:
        overrides["families"] = tuple(dict.fromkeys(families))
    if targets:
        overrides["targets"] = tuple(dict.fromkeys(targets))
    Demo(out, DemoConfig(**{**config.__dict__, **overrides})).run()


def cmd_demo(args: argparse.Namespace) -> int:
    check_folder_target(args.out, "--out")
    run(args.out, quick=args.quick, seed=args.seed, jobs=args.jobs, families=args.family, targets=args.target)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the bundled synthetic data",
        description="The paper in miniature on the bundled synthetic data: prepare -> validate -> re-annotate -> "
        "train every strategy -> lmms-eval -> leaderboard tables and site.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help="one family, one target, fewer epochs (about 1.5 minutes on 2 CPUs)"
    )
    p.add_argument("--jobs", type=int, default=None, help="trainings/evaluations at once (default: CPUs, at most 4)")
    p.add_argument(
        "--family", action="append", choices=list(TINY_BUILDERS), help="only this model family (repeatable)"
    )
    p.add_argument("--target", action="append", choices=video_targets(), help="only this video dataset (repeatable)")
    p.set_defaults(func=cmd_demo)
