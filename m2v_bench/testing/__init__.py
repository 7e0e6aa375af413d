"""What tests, benchmarks and the demo build, kept apart from the runtime (as TRL keeps its tiny-model generators):
tiny random checkpoints of every model family (:mod:`.tiny`) and the ``m2v-bench make-tiny-model`` command."""
