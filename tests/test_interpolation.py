"""sr_teach.interpolation: a faithful port of MATLAB's imresize, and the other methods' basics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sr_teach import interpolation
from sr_teach.images import ImageError, load_image, sample_path, to_uint8
from sr_teach.interpolation import (
    BAND_ROWS,
    KERNELS,
    METHODS,
    bicubic_filters,
    output_size,
    resize,
    resize_matrix,
    resize_weights,
    symmetric_pad,
)

# (set, folder of HR images, folder of MATLAB's LR images, scale), as in matlab_reference/README.md
MATLAB_REFERENCES = [
    ("Set5", "GTmod12", "LRbicx2", 2),
    ("Set5", "GTmod12_for_x4", "LRbicx4", 4),
    ("Set14", "GTmod12_for_x4", "LRbicx4", 4),
]


@pytest.mark.needs_datasets("matlab_reference")
@pytest.mark.parametrize("dataset, hr_folder, lr_folder, scale", MATLAB_REFERENCES)
def test_bicubic_downscale_reproduces_matlab(datasets_dir: Path, dataset, hr_folder, lr_folder, scale) -> None:
    """The issue's criterion: >= 99.9 % of pixels identical to MATLAB's imresize, none off by more than 1."""
    reference = datasets_dir / "matlab_reference" / dataset
    hr_paths = sorted((reference / hr_folder).glob("*.png"))
    assert hr_paths, f"no images in {reference / hr_folder}"
    identical = total = 0
    worst = 0
    for hr_path in hr_paths:
        ours = to_uint8(resize(load_image(hr_path), 1 / scale, clamp=False)).astype(np.int16)
        matlab = np.asarray(Image.open(reference / lr_folder / hr_path.name)).astype(np.int16)
        if ours.ndim == 2 and matlab.ndim == 3:  # a gray HR image whose LR MATLAB stored as RGB
            matlab = matlab[..., 0]
        assert ours.shape == matlab.shape, f"{hr_path.name}: {ours.shape} vs MATLAB's {matlab.shape}"
        difference = np.abs(ours - matlab)
        identical += int((difference == 0).sum())
        total += difference.size
        worst = max(worst, int(difference.max()))
    share = identical / total
    print(f"\nMATLAB imresize {dataset} x{scale}: {share:.4%} of {total} values identical, largest difference {worst}")
    assert share >= 0.999, f"only {share:.4%} of pixels agree with MATLAB (criterion: 99.9 %)"
    assert worst <= 1, f"a pixel differs from MATLAB by {worst} levels (criterion: at most 1)"


@pytest.mark.parametrize("method", METHODS)
def test_output_sizes(method: str) -> None:
    image = torch.rand(3, 12, 15, generator=torch.Generator().manual_seed(0))
    # MATLAB's rule: ceil(scale * size)
    for scale, size in [(2, (24, 30)), (3, (36, 45)), (4, (48, 60)), (8, (96, 120)), (2.5, (30, 38)), (1 / 3, (4, 5))]:
        result = resize(image, scale=scale, method=method)
        assert result.shape == (3, *size), f"{method} x{scale}: {tuple(result.shape)}"
        assert result.dtype == image.dtype
        assert 0 <= float(result.min()) and float(result.max()) <= 1  # clamped
    assert resize(image, size=(7, 40), method=method).shape == (3, 7, 40)
    assert resize(image[None].expand(2, -1, -1, -1), size=(5, 6), method=method).shape == (2, 3, 5, 6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", [2, 3, 0.5, 2.5])
def test_a_constant_image_stays_constant(method: str, scale: float) -> None:
    level = 77 / 255  # an 8-bit level, so Pillow's 8-bit resize is exact too
    result = resize(torch.full((2, 10, 12), level), scale=scale, method=method)
    torch.testing.assert_close(result, torch.full_like(result, level), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "area"])
def test_torch_methods_are_f_interpolate(method: str) -> None:
    batch = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    options = {} if method == "area" else {"align_corners": False}
    for size in [(18, 22), (20, 13), (4, 5)]:
        reference = F.interpolate(batch, size=size, mode=method, **options)
        ours = resize(batch, size=size, method=f"torch_{method}", clamp=False)
        assert torch.equal(ours, reference)
        assert torch.equal(resize(batch, size=size, method=f"torch_{method}"), reference.clamp(0, 1))
        assert torch.equal(resize(batch[0], size=size, method=f"torch_{method}", clamp=False), reference[0])
    reference = F.interpolate(batch, scale_factor=2, mode=method, **options)
    assert torch.equal(resize(batch, scale=2, method=f"torch_{method}", clamp=False), reference)


@pytest.mark.parametrize("scale", [2, 3, 4, 2.5])
def test_bicubic_reproduces_a_linear_ramp_away_from_the_borders(scale: float) -> None:
    """A cubic convolution kernel reproduces linear functions exactly: a check independent of MATLAB."""
    height, width = 12, 14
    rows = torch.arange(1, height + 1, dtype=torch.float64)[:, None]
    columns = torch.arange(1, width + 1, dtype=torch.float64)[None, :]

    def ramp(row, column):
        return 0.1 + 0.03 * row + 0.02 * column  # stays inside [0, 1] on the whole image

    result = resize(ramp(rows, columns)[None], scale=scale, method="bicubic")[0]

    def interior(in_length: int, out_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Output positions whose 4 taps all lie inside the image, and where they sit (1-based)."""
        position = torch.arange(1, out_length + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
        inside = (torch.floor(position - 2) + 1 >= 1) & (torch.floor(position - 2) + 4 <= in_length)
        return inside, position

    inside_rows, row_positions = interior(height, result.shape[0])
    inside_columns, column_positions = interior(width, result.shape[1])
    assert inside_rows.sum() > result.shape[0] // 2 and inside_columns.sum() > result.shape[1] // 2
    wanted = ramp(row_positions[:, None], column_positions[None, :])
    mask = inside_rows[:, None] & inside_columns[None, :]
    torch.testing.assert_close(result[mask], wanted[mask], rtol=0, atol=1e-12)


def test_nearest_x2_duplicates_pixels() -> None:
    image = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(2))
    duplicated = image.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    assert torch.equal(resize(image, scale=2, method="nearest"), duplicated)


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("in_length, out_length", [(10, 20), (10, 25), (12, 4), (9, 3), (7, 7), (3, 24)])
def test_resize_matrix_rows_sum_to_one(kernel: str, in_length: int, out_length: int) -> None:
    matrix = resize_matrix(in_length, out_length, out_length / in_length, kernel)
    assert matrix.shape == (out_length, in_length)
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(out_length, dtype=torch.float64), rtol=0, atol=1e-12)


def test_halving_weights_by_hand() -> None:
    """Output pixel x of a x1/2 shrink sits at u = 2x - 1/2, midway between input pixels 2x - 1 and 2x.

    With antialiasing MATLAB widens the cubic to 8 taps, weight(d) = cubic(d / 2) / 2 at distances
    d = +-0.5, +-1.5, +-2.5, +-3.5; without it, 4 taps cubic(d) at d = +-0.5, +-1.5.
    """
    antialiased = torch.tensor([-0.01171875, -0.03515625, 0.11328125, 0.43359375], dtype=torch.float64)
    antialiased = torch.cat([antialiased, antialiased.flip(0)])
    plain = torch.tensor([-0.0625, 0.5625, 0.5625, -0.0625], dtype=torch.float64)
    matrix = resize_matrix(16, 8, 0.5)
    plain_matrix = resize_matrix(16, 8, 0.5, antialiasing=False)
    for x in range(3, 7):  # 1-based output pixels whose taps stay inside the image
        torch.testing.assert_close(matrix[x - 1, 2 * x - 5 : 2 * x + 3], antialiased, rtol=0, atol=1e-15)
        assert float(matrix[x - 1].abs().sum()) == pytest.approx(float(antialiased.abs().sum()))
        torch.testing.assert_close(plain_matrix[x - 1, 2 * x - 3 : 2 * x + 1], plain, rtol=0, atol=1e-15)
    # near the border the taps beyond the image are mirrored back onto it: still summing to 1
    torch.testing.assert_close(matrix[0].sum(), torch.tensor(1.0, dtype=torch.float64))


def test_too_small_results_and_bad_arguments() -> None:
    image = torch.rand(3, 4, 4)
    for method in METHODS:
        with pytest.raises(ValueError):
            resize(image, size=(0, 3), method=method)
        with pytest.raises(ValueError):
            resize(image, scale=0, method=method)
        with pytest.raises(ValueError):
            resize(image, scale=-2, method=method)
    # the smallest positive result is one pixel (MATLAB rounds the size up)
    assert resize(image, scale=0.01).shape == (3, 1, 1)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown resize method 'bicubc'"):
        resize(torch.rand(3, 4, 4), scale=2, method="bicubc")


# ---------------------------------------------------------------- issue 11: memory and absurd scales


def banded_dense_product(image: torch.Tensor, scale: float) -> torch.Tensor:
    """resize as it was before issue 11: dense resize_matrix, applied 128 output pixels at a time."""
    def along(result: torch.Tensor, matrix: torch.Tensor, axis: int) -> torch.Tensor:
        pieces = []
        for start in range(0, matrix.shape[0], 128):
            band = matrix[start : start + 128]
            used = band.ne(0).any(dim=0).nonzero()
            first, last = int(used[0]), int(used[-1]) + 1
            if axis == -2:
                pieces.append(band[:, first:last] @ result[..., first:last, :])
            else:
                pieces.append(result[..., first:last] @ band[:, first:last].T)
        return torch.cat(pieces, dim=axis)

    (height, width), (out_height, out_width) = image.shape[-2:], output_size(image.shape[-2:], scale, None)
    result = along(image.double(), resize_matrix(height, out_height, scale), -2)
    return along(result, resize_matrix(width, out_width, scale), -1).to(image.dtype)


@pytest.mark.parametrize("scale", [2, 3, 2.5, 0.5, 1 / 3])
def test_resize_gives_the_numbers_of_the_dense_matrices(monkeypatch: pytest.MonkeyPatch, scale: float) -> None:
    image = load_image(sample_path("astronaut"))[:, :300, :270]
    reference = banded_dense_product(image, scale)
    monkeypatch.setattr(interpolation, "resize_matrix", None)  # resize must not build the dense matrices
    result = resize(image, scale=scale, clamp=False)
    # The same products of the same numbers: equal, but for MKL, whose float64 sums may differ in their
    # last bit with the memory alignment of the operands (bit-identical under MKL_CBWR=COMPATIBLE).
    torch.testing.assert_close(result, reference, rtol=0, atol=1e-7)
    assert (result == reference).float().mean() > 0.9999


def test_resize_weights_take_a_few_numbers_per_output_pixel() -> None:
    """A 24-megapixel photo x2: 6 weights per output pixel, where the dense matrix had 6000 (0.8 GB in all)."""
    weights = resize_weights(6000, 12000, 2.0)
    assert weights.weights.shape == (12000, 6) and weights.first.shape == (12000,)
    torch.testing.assert_close(weights.matrix(6000), resize_matrix(6000, 12000, 2.0), rtol=0, atol=0)


@pytest.mark.parametrize("method", list(KERNELS))
@pytest.mark.parametrize("scale", [2, 3, 2.5, 0.5])
def test_stripes_of_rows_equal_the_whole(method: str, scale: float) -> None:
    image = torch.rand(2, 3, 300, 41, generator=torch.Generator().manual_seed(0))
    whole = resize(image, scale=scale, method=method)
    height = whole.shape[-2]
    for step in (BAND_ROWS, 2 * BAND_ROWS, 50):  # on bands, exactly; off them, the same up to the last bit
        stripes = torch.cat([resize(image, scale=scale, method=method, rows=(start, min(start + step, height)))
                             for start in range(0, height, step)], dim=-2)
        if step % BAND_ROWS == 0:
            assert torch.equal(stripes, whole)
        torch.testing.assert_close(stripes, whole, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="rows="):
        resize(image, scale=scale, method=method, rows=(0, height + 1))
    with pytest.raises(ValueError, match="rows="):
        resize(image, scale=scale, method="torch_bicubic", rows=(0, 10))


@pytest.mark.parametrize("scale", [math.inf, math.nan, -math.inf, 0.0])
def test_non_finite_scales_are_refused(scale: float) -> None:
    with pytest.raises(ValueError, match="positive, finite scale"):
        resize(torch.rand(3, 8, 8), scale=scale)


@pytest.mark.parametrize("method", ["bicubic", "bilinear", "lanczos"])
def test_a_shrink_to_nothing_is_refused_without_allocating(method: str) -> None:
    # An antialiased kernel widens by 1 / scale: 1e-9 asked for 4e9 weights per output pixel, 32 GB.
    with pytest.raises(ValueError, match="shrinks too much.*size="):
        resize(torch.rand(3, 8, 8), scale=1e-9, method=method)
    assert resize(torch.rand(3, 8, 8), size=(1, 1), method=method).shape == (3, 1, 1)
    assert resize(torch.rand(3, 8, 8), scale=1e-9, method="nearest").shape == (3, 1, 1)  # nearest never widens


@pytest.mark.parametrize("scale", [1e6, 1e300, 1e308])
def test_an_enormous_output_is_refused_before_anything_is_made(scale: float) -> None:
    with pytest.raises(ImageError, match="over the limit .*SR_TEACH_MAX_PIXELS"):
        resize(torch.rand(3, 8, 8), scale=scale)
    with pytest.raises(ImageError, match="over the limit"):
        resize(torch.rand(3, 8, 8), size=(100_000, 100_000))


def test_the_output_limit_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_TEACH_MAX_PIXELS", "400")
    assert resize(torch.rand(1, 10, 10), scale=2).shape == (1, 20, 20)
    with pytest.raises(ImageError, match="resizing 10 x 10 by 2.1 is 21 x 21 = 441 pixels, over the limit of 400 pixels"):
        resize(torch.rand(1, 10, 10), scale=2.1)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(1, 5), (2, 3), (17, 23)])
def test_bicubic_filters_are_matlab_bicubic(scale: int, size: tuple[int, int]) -> None:
    images = torch.rand(2, 3, *size, dtype=torch.float64)
    phases = F.conv2d(symmetric_pad(images), bicubic_filters(scale, 3), groups=3)
    expected = resize(images, scale=scale, clamp=False)
    assert (F.pixel_shuffle(phases, scale) - expected).abs().max() < 1e-12


def test_symmetric_pad_repeats_the_edge_then_mirrors() -> None:
    row = torch.arange(1.0, 5.0).view(1, 1, 1, 4)  # 1 2 3 4
    assert symmetric_pad(row)[0, 0, 0].tolist() == [2, 1, 1, 2, 3, 4, 4, 3]
    assert symmetric_pad(row)[0, 0, :, 2].tolist() == [1] * 5  # a side of one pixel: that pixel
