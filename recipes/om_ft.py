"""OM-FT: fine-tune on a meme dataset with its ORIGINAL labels (mapped onto the target's label words).

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/om_ft.py \
        --config recipes/llava_next_video/om_ft.yaml

Any YAML key can be overridden on the command line (e.g. `--target hatemm --meme_source mami`). The strategies
differ only in their data mixture: see trainers/data.py (installed as m2v_bench.trainers.data).
"""

from m2v_bench.trainers.sft import run

if __name__ == "__main__":
    run("om_ft")
