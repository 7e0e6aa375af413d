"""``python -m m2v_bench.tasks`` prints the task folder, for ``lmms-eval --include_path``."""

from m2v_bench.tasks import TASKS_DIR

print(TASKS_DIR)
