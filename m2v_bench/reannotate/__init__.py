"""Re-annotation: align meme labels with a target video dataset's label definition (the paper's Section 3).

Three votes per meme: its original label, a VLM's few-shot prediction under the target's definition
(demonstrations = the target's video samples, described in text), and a human label collected only where the first
two disagree. One module per stage, each a ``m2v-bench reannotate`` subcommand (:mod:`.commands`):

1. :mod:`.predict`: append-only JSONL of predictions keyed by meme id; a killed run resumes where it stopped. Runs
   data-parallel under ``accelerate launch`` / ``torchrun`` (one part file per rank, merged into the same file).
2. :mod:`.queue`: the conflicts (original != prediction; an invalid prediction is a conflict too) as CSV and as a
   Label Studio import with the model's answer as a pre-annotation.
3. :mod:`.human` (``import``): annotators' answers (CSV or Label Studio export; several annotators per meme) -> one
   human label per meme (their majority; a tie stays unresolved).
4. :mod:`.vote`: agreeing memes keep their label; conflicts take the human label -- the 2-of-3 majority, since the
   human breaks the tie between the two other votes. Conflicts without a human label are reported, never guessed.
5. :mod:`.stats`: Cohen's kappa per pair of votes, the flip matrix original -> final, positive rates.

:mod:`.released` reads the paper's released re-annotation instead. Every output goes through
:mod:`m2v_bench.atomic`; the predictions file is appended to as the model answers, and rewritten atomically when
the ranks' parts are merged.
"""

from m2v_bench.reannotate.human import HumanLabel, import_answers, read_human, write_human
from m2v_bench.reannotate.memes import check_images, load_memes, target_space
from m2v_bench.reannotate.predict import (
    Prediction,
    check_predictions,
    merge_parts,
    part_files,
    part_path,
    predict,
    read_predictions,
)
from m2v_bench.reannotate.queue import QUEUE_COLUMNS, conflicts, read_queue, write_queue
from m2v_bench.reannotate.released import released_records
from m2v_bench.reannotate.stats import agreement_stats
from m2v_bench.reannotate.vote import (
    REANNOTATED_CSV_COLUMNS,
    VoteResult,
    read_paper_csv,
    vote,
    write_aligned,
    write_paper_csv,
)

__all__ = [
    "QUEUE_COLUMNS",
    "REANNOTATED_CSV_COLUMNS",
    "HumanLabel",
    "Prediction",
    "VoteResult",
    "agreement_stats",
    "check_images",
    "check_predictions",
    "conflicts",
    "import_answers",
    "load_memes",
    "merge_parts",
    "part_files",
    "part_path",
    "predict",
    "read_human",
    "read_paper_csv",
    "read_predictions",
    "read_queue",
    "released_records",
    "target_space",
    "vote",
    "write_aligned",
    "write_human",
    "write_paper_csv",
    "write_queue",
]
