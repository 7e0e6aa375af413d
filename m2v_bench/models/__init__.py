"""Model families (:mod:`.families`), loading base + adapter checkpoints (:mod:`.loading`), tiny offline
checkpoints for tests and the demo (:mod:`.tiny`) and the lmms-eval model ``m2v`` (:mod:`.lmms_model`)."""
