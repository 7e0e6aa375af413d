"""The corpus as a whole: every command has cases, at least 200 in all, and no two ``Case`` ids repeat."""

from __future__ import annotations

from .harness import Case
from .test_frames import FRAMES
from .test_leaderboard import LEADERBOARD
from .test_other_commands import OTHER
from .test_prepare import PREPARE
from .test_reannotate_import import IMPORT
from .test_reannotate_predict import PREDICT
from .test_reannotate_queue import QUEUE
from .test_reannotate_released import RELEASED
from .test_reannotate_stats import STATS
from .test_reannotate_vote import VOTE
from .test_tasks import TASKS
from .test_training import TRAINING
from .test_validate import VALIDATE


def test_the_corpus_is_large_and_covers_every_command():
    tables = {"prepare": PREPARE, "validate": VALIDATE, "predict": PREDICT, "queue": QUEUE, "import": IMPORT,
              "vote": VOTE, "stats": STATS, "released": RELEASED, "leaderboard": LEADERBOARD, "training": TRAINING,
              "other commands": OTHER,
              "frames": FRAMES, "tasks": TASKS}  # fmt: skip
    sizes = {name: len(table) for name, table in tables.items()}
    assert all(sizes.values()) and sum(sizes.values()) >= 200, sizes
    ids = [c.id for table in tables.values() for c in table if isinstance(c, Case)]
    assert len(ids) == len(set(ids)), "case ids must be unique"
