"""The restoration tables: shipped denoisers and JPEG removers beside BM3D, the JPEG itself and the
published numbers, and how much each detail of the protocol moves them.

    SR_TEACH_DATA=../shared/datasets .venv/bin/python benchmarks/restoration_tables.py [--quick]

Everything under the protocols of `sr_teach.restoration` (those of the published tables), on Set12,
Classic5, LIVE1_gray and LIVE1 from the data directory; the test sets are only measured here, never
used to choose anything. BM3D (the `bm3d` package) runs in the same process on the same noisy
images. --quick measures the first 2 images of each set (for a smoke test, not for the README).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sr_teach import classical
from sr_teach.images import quantize
from sr_teach.pretrained import load_pretrained
from sr_teach.restoration import PUBLISHED_RESTORATION, RestorationTask, evaluate_restoration, model_restorer


def mean_psnr(restorer, dataset: str, task: RestorationTask, arguments, rgb: bool = False,
              max_images: int | None = None) -> tuple[float, float]:
    result = evaluate_restoration(restorer, dataset, task, method="", data_dir=arguments.data_dir,
                                  y_channel=not rgb, max_images=2 if arguments.quick else max_images)
    return result.mean["psnr"], result.mean["ssim"]


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def denoising_table(arguments) -> None:
    model = load_pretrained("dncnn_gray", 1)
    print("\n### Gray denoising, Set12 (PSNR / SSIM)\n")
    print(row(["sigma", "noisy input", "BM3D (measured)", "dncnn_gray", "BM3D published", "DnCNN-S", "DnCNN-B", "FFDNet"]))
    print(row(["---"] * 8))
    for sigma in (15, 25, 50):
        task = RestorationTask("denoise", sigma)
        published = PUBLISHED_RESTORATION[("Set12", "denoise", sigma)]
        scores = [mean_psnr(lambda image: image, "Set12", task, arguments)]
        if arguments.bm3d:
            scores.append(mean_psnr(lambda image: classical.bm3d_denoise(image, sigma), "Set12", task, arguments))
        scores.append(mean_psnr(model_restorer(model), "Set12", task, arguments))
        cells = [f"{psnr:.2f} / {ssim:.4f}" for psnr, ssim in scores]
        if not arguments.bm3d:
            cells.insert(1, "-")
        print(row([str(sigma), *cells, *(f"{published[name]:.2f}" for name in ("BM3D", "DnCNN-S", "DnCNN-B", "FFDNet"))]),
              flush=True)


def jpeg_table(arguments) -> None:
    model = load_pretrained("dncnn_jpeg", 1)
    print("\n### JPEG artefact removal (gray PSNR / SSIM)\n")
    print(row(["set", "quality", "JPEG (measured)", "dncnn_jpeg", "JPEG published", "AR-CNN", "DnCNN-3", "FBCNN"]))
    print(row(["---"] * 8))
    for dataset in ("Classic5", "LIVE1_gray"):
        for quality in (10, 20, 30, 40):
            task = RestorationTask("jpeg", quality)
            published = PUBLISHED_RESTORATION[(dataset, "jpeg", quality)]
            scores = [mean_psnr(lambda image: image, dataset, task, arguments),
                      mean_psnr(model_restorer(model), dataset, task, arguments)]
            print(row([dataset, str(quality), *(f"{psnr:.2f} / {ssim:.4f}" for psnr, ssim in scores),
                       *(f"{published[name]:.2f}" for name in ("JPEG", "AR-CNN", "DnCNN-3", "FBCNN"))]), flush=True)


def colour_table(arguments) -> None:
    model = load_pretrained("dncnn_color", 1)
    count = arguments.colour_images or None
    print(f"\n### Colour denoising, LIVE1{f' (first {count} images)' if count else ''} (RGB PSNR / SSIM)\n")
    columns = ["sigma", "noisy input", "dncnn_color"] + (["CBM3D (measured)"] if arguments.bm3d else [])
    print(row(columns))
    print(row(["---"] * len(columns)))
    for sigma in (15, 25, 50):
        task = RestorationTask("denoise", sigma)
        scores = [mean_psnr(lambda image: image, "LIVE1", task, arguments, rgb=True, max_images=count),
                  mean_psnr(model_restorer(model), "LIVE1", task, arguments, rgb=True, max_images=count)]
        if arguments.bm3d:
            scores.append(mean_psnr(lambda image: classical.bm3d_denoise(image, sigma), "LIVE1", task, arguments,
                                    rgb=True, max_images=count))
        print(row([str(sigma), *(f"{psnr:.2f} / {ssim:.4f}" for psnr, ssim in scores)]), flush=True)


def protocol_effects(arguments) -> None:
    """Each detail of the protocol changed alone, in dB of mean PSNR."""
    denoiser, remover = load_pretrained("dncnn_gray", 1), load_pretrained("dncnn_jpeg", 1)
    print("\n### What each detail of the protocol is worth (dB of mean PSNR)\n")
    task = RestorationTask("denoise", 25)
    base = mean_psnr(model_restorer(denoiser), "Set12", task, arguments)[0]
    clipped = mean_psnr(model_restorer(denoiser), "Set12", RestorationTask("denoise", 25, clip=True), arguments)[0]
    rounded = mean_psnr(lambda image: model_restorer(denoiser)(quantize(image.clamp(0, 1))), "Set12", task, arguments)[0]
    seeds = [mean_psnr(model_restorer(denoiser), "Set12", RestorationTask("denoise", 25, seed=seed), arguments)[0]
             for seed in range(5)]
    print(f"- Set12 sigma 25, dncnn_gray: {base:.3f} dB under the tables' protocol (not clipped, not rounded)")
    print(f"  - noisy input clipped to [0, 1]: {clipped - base:+.3f} dB")
    print(f"  - noisy input clipped and rounded to 8 bits (a saved PNG): {rounded - base:+.3f} dB")
    print(f"  - five noise seeds: {min(seeds):.3f} to {max(seeds):.3f} dB (standard deviation "
          f"{statistics.stdev(seeds):.3f}): another draw than MATLAB's moves the mean this much")
    if arguments.bm3d:
        bm3d = mean_psnr(lambda image: classical.bm3d_denoise(image, 25), "Set12", task, arguments)[0]
        bm3d_clipped = mean_psnr(lambda image: classical.bm3d_denoise(image, 25), "Set12",
                                 RestorationTask("denoise", 25, clip=True), arguments)[0]
        print(f"  - BM3D: {bm3d:.3f} dB; with the noisy input clipped: {bm3d_clipped - bm3d:+.3f} dB")
    # LIVE1 as the JPEG tables use it: MATLAB's Y (LIVE1_gray), not Pillow's gray of the colour files.
    luma = mean_psnr(lambda image: image, "LIVE1_gray", RestorationTask("jpeg", 10), arguments)[0]
    pillow_gray = mean_psnr(lambda image: image, "LIVE1", RestorationTask("jpeg", 10), arguments)[0]
    print(f"- LIVE1 at quality 10, the JPEG itself: {luma:.3f} dB on MATLAB's Y (LIVE1_gray, the tables' "
          f"images); compressing the colour files and measuring Y instead: {pillow_gray - luma:+.3f} dB")
    ours_luma = mean_psnr(model_restorer(remover), "LIVE1_gray", RestorationTask("jpeg", 10), arguments)[0]
    print(f"  - dncnn_jpeg on LIVE1_gray q10: {ours_luma:.3f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder holding Set12, Classic5, LIVE1, LIVE1_gray (default: $SR_TEACH_DATA)")
    parser.add_argument("--no-bm3d", dest="bm3d", action="store_false", help="skip BM3D (minutes on a 2-core CPU)")
    parser.add_argument("--quick", action="store_true", help="2 images per set: a smoke test")
    parser.add_argument("--colour-images", type=int, default=6,
                        help="LIVE1 images in the colour table (CBM3D takes about 20 s an image); 0 = all 29")
    parser.add_argument("--tables", nargs="+", default=["denoise", "jpeg", "colour", "protocol"],
                        choices=["denoise", "jpeg", "colour", "protocol"])
    arguments = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    for name in arguments.tables:
        {"denoise": denoising_table, "jpeg": jpeg_table, "colour": colour_table, "protocol": protocol_effects}[name](arguments)
    print(f"\n({(time.perf_counter() - start) / 60:.1f} min, torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
