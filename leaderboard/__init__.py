"""The m2v-bench leaderboard (installed as ``m2v_bench.leaderboard``): verified submissions, substitution and
augmentation tables, a static site."""
