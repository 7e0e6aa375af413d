"""lmms-eval tasks of m2v-bench (installed as ``m2v_bench.tasks``): MHC, HateMM, FHM and MAMI with the shared
hate-label prompts of :mod:`m2v_bench.labels`.

Installing m2v-bench makes ``lmms-eval --tasks m2v_mhc`` work with no flag (see :mod:`m2v_bench.lmms_plugin`). The
explicit fallback is ``lmms-eval --include_path "$(python -m m2v_bench.tasks)" ...``.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
"""The folder to give lmms-eval as ``--include_path``."""
