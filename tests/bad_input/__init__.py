"""The bad-input corpus (issue 17): what a hostile or careless user gives every command, generated at test time.

Each case builds a small workspace under ``tmp_path`` (raw datasets, manifests, media, predictions, recipes, ...),
runs the command in-process (``m2v_bench.cli.main`` or the recipe's ``run``) and asserts (``harness.check``)

- the exit code (2: a user error, 1: ``validate`` found errors);
- one ``error:`` line (no traceback) that names the file, line or sample (the case's ``names``), never ``:0``;
- that no file in the workspace changed or appeared (inputs and outputs, snapshotted before and after).

``harness.py`` holds the harness (``Case``, ``snapshot``, ``check``, ``cases``) and the builders that more than one
command's cases use; each command has its own module, its case table and the builders only it uses:
``test_prepare`` (``PREPARE``), ``test_validate`` (``VALIDATE``), ``test_reannotate_predict`` (``PREDICT``),
``test_reannotate_queue`` (``QUEUE``), ``test_reannotate_import`` (``IMPORT``), ``test_reannotate_vote`` (``VOTE``),
``test_reannotate_stats`` (``STATS``), ``test_reannotate_released`` (``RELEASED``), ``test_leaderboard``
(``LEADERBOARD``), ``test_training`` (``TRAINING``), ``test_other_commands`` (``OTHER``: make-sample-data,
make-tiny-model, demo, unknown commands); the frame sampler and the lmms-eval task functions are library calls
(``test_frames``: ``FRAMES``, ``test_tasks``: ``TASKS``). ``test_corpus`` checks the tables together (every command
has cases, 200 or more in all, unique ids). The tables of the commands that succeed cheaply (prepare of each dataset,
validate, queue, import, vote, stats, released) have a control case (the unmodified workspace succeeds), so a case
fails for its own mutation, not for a broken base. The stand-alone tests (kills mid-write, resumed checkpoints, the
frame cache, ...) sit with the command they exercise.
"""

import pytest

# check()'s asserts live in harness.py, not in a test module: have pytest rewrite them as it did in one file.
pytest.register_assert_rewrite("bad_input.harness")
