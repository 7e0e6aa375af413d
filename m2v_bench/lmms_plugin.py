"""The lmms-eval plugin entry point (``[project.entry-points."lmms_eval.models"]`` in pyproject.toml).

lmms-eval 0.7 loads every ``lmms_eval.models`` entry point when ``lmms_eval.models`` is first imported -- which the
CLI and ``lmms_eval.evaluator`` do before any ``TaskManager`` exists -- but has no entry point for tasks. So this
entry point does two things: it returns m2v-bench's model manifests, and it makes every ``TaskManager`` index
m2v-bench's task folder next to the ones it was asked for. That is what lets ``lmms-eval --tasks m2v_mhc`` run with
no ``--include_path``. ``tests/test_tasks.py`` fails loudly if an lmms-eval release stops honouring it; the
documented fallback is ``--include_path "$(python -m m2v_bench.tasks)"``.
"""

from __future__ import annotations

import functools

from m2v_bench.tasks import TASKS_DIR


def register_tasks() -> None:
    """Make ``lmms_eval.tasks.TaskManager`` include m2v-bench's task folder (idempotent)."""
    from lmms_eval.tasks import TaskManager  # here: lmms-eval loads this entry point while it imports itself

    original = TaskManager.initialize_tasks
    if getattr(original, "_m2v_bench", False):
        return

    @functools.wraps(original)
    def initialize_tasks(self, include_path=None, include_defaults=True):
        paths = [] if include_path is None else [include_path] if isinstance(include_path, str) else list(include_path)
        if not any(str(p).rstrip("/") == str(TASKS_DIR) for p in paths):
            paths.append(str(TASKS_DIR))
        return original(self, include_path=paths, include_defaults=include_defaults)

    initialize_tasks._m2v_bench = True
    TaskManager.initialize_tasks = initialize_tasks


def manifests() -> list:
    """Called by lmms-eval at start-up: registers the tasks and returns the model manifests."""
    from lmms_eval.models.registry_v2 import ModelManifest  # here: see register_tasks

    register_tasks()
    return [ModelManifest(model_id="m2v", simple_class_path="m2v_bench.models.lmms_model.M2V")]
