"""The m2v-bench leaderboard (installed as ``m2v_bench.leaderboard``): verified submissions, substitution and
augmentation tables, a static site.

Modules: :mod:`.store` (the SQLite store), :mod:`.runs` (lmms-eval output folders), :mod:`.submit` (verifying a run
and computing its rows), :mod:`.views` (tables), :mod:`.site` (the static site), :mod:`.api` / :mod:`.service` /
:mod:`.server` / :mod:`.ui` (the web app), :mod:`.worker` (evaluations run for the server), :mod:`.published` (the
paper's own rows), :mod:`.commands` (``m2v-bench leaderboard ...``).
"""

BOARDS = ("paper", "sample")
"""``paper``: results on the paper's test sets (the public board); ``sample``: on sample or custom test sets."""
OFFICIAL_TASKS = ("m2v_mhc", "m2v_hatemm")
"""What a verified run evaluates: the paper's two video targets, plain view."""
