"""lmms-eval tasks of m2v-bench (installed as ``m2v_bench.tasks``): MHC, HateMM, FHM and MAMI with the shared
hate-label prompts of :mod:`m2v_bench.labels`. The task YAMLs land with the tasks issue (#5)."""
