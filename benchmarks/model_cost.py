"""What does a training step of SRCNN, VDSR, FSRCNN and ESPCN cost at the same output size and scale?

    PYTHONPATH=. python benchmarks/model_cost.py                      # x3, then x2 and x4
    PYTHONPATH=. python benchmarks/model_cost.py --scales 3 --output-size 48 --batch-size 4 --quick

Every model makes the same output, batch x 1 x 96 x 96 (the Y channel, as the papers train), from
its own kind of input: SRCNN and VDSR (pre-upsampling) get the bicubic enlargement, 96 x 96;
FSRCNN and ESPCN (post-upsampling) the small image, 96 / scale a side. For each, `sr_teach.tools.cost`
measures a training step (forward, MSE loss, backward, Adam update) on this machine:

- ms/step: the fastest of at least `--steps` timed steps (more for fast models, up to about a
  second of them) after one warm-up step, on one CPU thread unless `--threads` says otherwise;
- MACs/px: multiply-adds of the convolutions per output pixel, counted from the layer shapes;
- activations: bytes autograd saves for the backward pass, counted exactly;
- peak memory: the peak resident memory of a fresh process during the steps minus its memory
  before them (Linux; each model in its own process, so one model's memory cannot hide another's).

A pre-upsampling model runs on the output grid whatever the scale, so its step costs the same at
x2, x3 and x4: it is measured once, at the first scale, and its row repeated (marked "same").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sr_teach.tools.cost import CostTable, compare_costs, default_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[3, 2, 4])
    parser.add_argument("--output-size", type=int, default=96, help="side of the output patch (default 96)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model, after one warm-up step")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per step (default 1: fair on a busy machine; 0 = PyTorch's default)")
    parser.add_argument("--quick", action="store_true", help="skip the fresh processes: no peak memory")
    arguments = parser.parse_args()
    threads = arguments.threads or None

    print(f"torch {torch.__version__}; PyTorch's default here: {torch.get_num_threads()} threads")
    pre_rows = None
    for scale in arguments.scales:
        models = default_models(scale)
        if pre_rows is not None:  # pre-upsampling models cost the same at every scale: measured once
            models = {name: model for name, model in models.items() if model.upsampling == "post"}
        start = time.perf_counter()
        table = compare_costs(
            models, scale=scale, output_size=arguments.output_size, batch_size=arguments.batch_size,
            steps=arguments.steps, threads=threads, separate_process=not arguments.quick,
        )
        if pre_rows is None:
            pre_rows = [row for row in table.rows if row.upsampling == "pre"]
        else:
            table = CostTable(scale=scale, rows=[*pre_rows, *table.rows])
        print()
        print(table)
        pre_fastest = min(row.cost.seconds_per_step for row in table.rows if row.upsampling == "pre")
        for row in table.rows:
            if row.upsampling == "post":
                print(f"  {row.model} step: {pre_fastest / row.cost.seconds_per_step:.1f}x faster than the fastest "
                      "pre-upsampling model")
        if scale != arguments.scales[0]:
            print(f"  (pre-upsampling rows: the same, measured at x{arguments.scales[0]})")
        print(f"  measured in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
