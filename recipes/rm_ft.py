"""RM-FT: fine-tune on a meme dataset RE-ANNOTATED to the target's label definition.

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/rm_ft.py \
        --config recipes/llava_next_video/rm_ft.yaml

Any YAML key can be overridden on the command line (e.g. `--target hatemm --meme_source mami`). The strategies
differ only in their data mixture: see trainers/data.py (installed as m2v_bench.trainers.data).
"""

from m2v_bench.trainers.sft import run

if __name__ == "__main__":
    run("rm_ft")
