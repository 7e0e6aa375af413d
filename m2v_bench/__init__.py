"""m2v-bench: hateful-video detection with vision-language models.

The core library shared by the lmms-eval tasks (``m2v_bench.tasks``), the trainers (``m2v_bench.trainers``)
and the leaderboard (``m2v_bench.leaderboard``).
"""

__version__ = "0.1.0"
