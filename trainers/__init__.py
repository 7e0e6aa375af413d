"""LoRA SFT of the supported VLM families with TRL (installed as ``m2v_bench.trainers``). Lands with the
training issue (#7); the recipes in ``recipes/`` call into it."""
