"""LoRA SFT of the registered VLM families with TRL (installed as ``m2v_bench.trainers``); the recipes in
``recipes/`` call into it."""
