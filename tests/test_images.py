"""sr_teach.images: every Pillow mode in, 8-bit PNG out, clear errors, and MATLAB's rgb2ycbcr."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr as skimage_rgb2ycbcr

from sr_teach import images
from sr_teach.images import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_VARIABLE,
    ImageError,
    check_pixels,
    decode_image,
    load_image,
    load_sample,
    max_pixels,
    quantize,
    rgb_to_gray,
    rgb_to_luma,
    rgb_to_ycbcr,
    sample_names,
    sample_path,
    save_image,
    ycbcr_to_rgb,
)


def expected(values) -> torch.Tensor:
    """A (C, H, W) float32 tensor from nested lists of (H, W, C) values in [0, 1]."""
    array = torch.tensor(values, dtype=torch.float64)
    if array.dim() == 2:
        array = array[..., None]
    return array.permute(2, 0, 1).float()


def assert_pixels(actual: torch.Tensor, wanted: torch.Tensor) -> None:
    assert actual.dtype == torch.float32
    assert actual.shape == wanted.shape, f"shape {tuple(actual.shape)} != {tuple(wanted.shape)}"
    torch.testing.assert_close(actual, wanted, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- loading every Pillow mode


def test_rgb(tmp_path: Path) -> None:
    pixels = np.array([[[255, 0, 0], [0, 128, 255]], [[1, 2, 3], [254, 253, 252]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "rgb.png")
    assert_pixels(load_image(tmp_path / "rgb.png"), expected(pixels / 255.0))


def test_gray_l(tmp_path: Path) -> None:
    pixels = np.array([[0, 1, 128], [200, 254, 255]], dtype=np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "gray.png")
    image = load_image(tmp_path / "gray.png")
    assert image.shape == (1, 2, 3)
    assert_pixels(image, expected(pixels / 255.0))


def test_bilevel_1(tmp_path: Path) -> None:
    Image.fromarray(np.array([[True, False]])).convert("1").save(tmp_path / "bilevel.png")
    assert_pixels(load_image(tmp_path / "bilevel.png"), expected([[1.0, 0.0]]))


def test_la_is_composited_over_white(tmp_path: Path) -> None:
    # (gray, alpha): opaque, fully transparent, half transparent
    pixels = np.array([[[100, 255], [100, 0], [100, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, "LA").save(tmp_path / "la.png")
    half = 128 / 255
    wanted = [[100 / 255, 1.0, 100 / 255 * half + (1 - half)]]
    assert_pixels(load_image(tmp_path / "la.png"), expected(wanted))


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [200, 100, 50, 51]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "rgba.png")
    alpha = 51 / 255
    wanted = [[[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [c / 255 * alpha + (1 - alpha) for c in (200, 100, 50)]]]
    assert_pixels(load_image(tmp_path / "rgba.png"), expected(wanted))


def palette_image(transparent_index: int | None) -> Image.Image:
    image = Image.fromarray(np.array([[0, 1, 2]], dtype=np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * (256 - 3) * 3)
    if transparent_index is not None:
        image.info["transparency"] = transparent_index
    return image


def test_palette_without_transparency(tmp_path: Path) -> None:
    palette_image(None).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    wanted = [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [10 / 255, 20 / 255, 30 / 255]]]
    assert_pixels(load_image(tmp_path / "p.png"), expected(wanted))


def test_palette_with_transparency_is_composited_over_white(tmp_path: Path) -> None:
    palette_image(1).save(tmp_path / "p.png", transparency=1)
    with Image.open(tmp_path / "p.png") as reread:
        assert reread.mode == "P" and "transparency" in reread.info
    wanted = [[[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [10 / 255, 20 / 255, 30 / 255]]]
    assert_pixels(load_image(tmp_path / "p.png"), expected(wanted))


def test_16_bit_keeps_its_precision(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 1, 32768, 65535]], dtype=np.uint16)).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as reread:
        assert reread.mode in ("I;16", "I")  # Pillow's name for a 16-bit gray PNG
    wanted = [[0.0, 1 / 65535, 32768 / 65535, 1.0]]
    image = load_image(tmp_path / "deep.png")
    assert_pixels(image, expected(wanted))
    assert image[0, 0, 3] == 1.0
    assert image[0, 0, 2] != 0.5  # 16 bits survive: not rounded to an 8-bit level


def test_cmyk(tmp_path: Path) -> None:
    # cyan, black, white, and 50 % magenta
    pixels = np.array([[[255, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 0], [0, 128, 0, 0]]], dtype=np.uint8)
    Image.fromarray(pixels, "CMYK").save(tmp_path / "cmyk.tif")
    wanted = [[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 127 / 255, 1.0]]]
    assert_pixels(load_image(tmp_path / "cmyk.tif"), expected(wanted))


def test_mode_rgb_repeats_gray_and_mode_gray_uses_bt601_full_range(tmp_path: Path) -> None:
    Image.fromarray(np.array([[10, 200]], dtype=np.uint8), "L").save(tmp_path / "gray.png")
    as_rgb = load_image(tmp_path / "gray.png", mode="rgb")
    assert as_rgb.shape == (3, 1, 2)
    assert torch.equal(as_rgb[0], as_rgb[1]) and torch.equal(as_rgb[1], as_rgb[2])
    assert_pixels(as_rgb[:1], expected([[10 / 255, 200 / 255]]))

    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "rgb.png")
    as_gray = load_image(tmp_path / "rgb.png", mode="gray")
    assert_pixels(as_gray, expected([[0.299, 0.587, 0.114, 1.0]]))
    # "gray" of a gray file and "keep" of an RGB file change nothing
    assert torch.equal(load_image(tmp_path / "gray.png", mode="gray"), load_image(tmp_path / "gray.png"))
    assert load_image(tmp_path / "rgb.png", mode="keep").shape == (3, 1, 4)


def test_unknown_mode_argument() -> None:
    with pytest.raises(ValueError, match="mode"):
        load_image(sample_path("camera"), mode="bgr")


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip_is_exact_for_8_bit_values(tmp_path: Path, channels: int) -> None:
    levels = torch.randint(0, 256, (channels, 9, 11), generator=torch.Generator().manual_seed(channels))
    image = levels.float() / 255
    save_image(image, tmp_path / "round.png")
    assert torch.equal(load_image(tmp_path / "round.png"), image)


def test_saving_rounds_to_the_nearest_8_bit_level(tmp_path: Path) -> None:
    image = torch.rand(3, 7, 5, generator=torch.Generator().manual_seed(0))
    save_image(image, tmp_path / "rounded.png")
    reloaded = load_image(tmp_path / "rounded.png")
    torch.testing.assert_close(reloaded, quantize(image), rtol=0, atol=1e-7)
    assert (reloaded - image).abs().max() <= 0.5 / 255 + 1e-7


def test_save_refuses_to_overwrite_and_leaves_the_original(tmp_path: Path) -> None:
    target = tmp_path / "keep.png"
    save_image(torch.zeros(1, 4, 4), target)
    original = target.read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        save_image(torch.ones(1, 4, 4), target, overwrite=False)
    assert target.read_bytes() == original
    save_image(torch.ones(1, 4, 4), target)  # overwrite=True is the default
    assert torch.equal(load_image(target), torch.ones(1, 4, 4))


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("target_exists", [False, True])
@pytest.mark.parametrize("suffix", [".png", ".jpg"])  # sr_teach's own PNG writer, and Pillow's for the others
def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interruption, target_exists, suffix) -> None:
    target = tmp_path / f"atomic{suffix}"
    if target_exists:
        save_image(torch.zeros(3, 4, 4), target)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def save_half_then_fail(self_or_file, file_or_stripes=None, *args, **kwargs):
        file = self_or_file if suffix == ".png" else file_or_stripes
        file.write(b"\x89PNG\r\n\x1a\n half of an image")
        raise interruption

    if suffix == ".png":
        monkeypatch.setattr(images, "write_png", save_half_then_fail)
    else:
        monkeypatch.setattr(Image.Image, "save", save_half_then_fail)
    with pytest.raises(type(interruption)):
        save_image(torch.ones(3, 4, 4), target)
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert after == before  # no temporary file left, the target absent or untouched


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_image(torch.zeros(1, 4, 4), tmp_path / "no_such_folder" / "out.png")
    with pytest.raises(ValueError, match="suffix"):
        save_image(torch.zeros(1, 4, 4), tmp_path / "out.unknown")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- errors on bad files


def real_png_bytes(image_format: str = "PNG") -> bytes:
    """An incompressible 64 x 64 RGB image, so that half of the file cuts into the pixel data."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format=image_format)
    return buffer.getvalue()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        load_image(tmp_path / "nothing.png")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").touch()
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(1).bytes(500))
    with pytest.raises(ImageError, match="noise.png"):
        load_image(tmp_path / "noise.png")


@pytest.mark.parametrize("image_format, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path: Path, image_format: str, suffix: str) -> None:
    whole = real_png_bytes(image_format)
    (tmp_path / f"whole{suffix}").write_bytes(whole)
    assert load_image(tmp_path / f"whole{suffix}").shape == (3, 64, 64)  # the uncut file is fine
    (tmp_path / f"half{suffix}").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / f"half{suffix}")


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


# ---------------------------------------------------------------- colour conversions


def rgb_pixels(*colours) -> torch.Tensor:
    """(3, 1, N) float64 from N (r, g, b) triples on the 0..255 scale."""
    return torch.tensor(colours, dtype=torch.float64).T[:, None, :] / 255


def test_ycbcr_matches_matlab_on_known_colours() -> None:
    ycbcr = rgb_to_ycbcr(rgb_pixels((255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))) * 255
    wanted = torch.tensor([
        [235.0, 128.0, 128.0],                   # white
        [16.0, 128.0, 128.0],                    # black
        [16 + 65.481, 128 - 37.797, 128 + 112.0],  # red
        [16 + 128.553, 128 - 74.203, 128 - 93.786],  # green
        [16 + 24.966, 128 + 112.0, 128 - 18.214],  # blue
    ], dtype=torch.float64).T[:, None, :]
    torch.testing.assert_close(ycbcr, wanted, rtol=0, atol=1e-9)


def test_ycbcr_round_trip() -> None:
    image = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(image)), image, rtol=0, atol=1e-5)
    as_double = image.double()
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(as_double)), as_double, rtol=0, atol=1e-12)


def test_ycbcr_agrees_with_scikit_image() -> None:
    # scikit-image's rgb2ycbcr uses the same BT.601 studio-swing matrix: Y in 16..235 for [0, 1] input.
    image = torch.rand(3, 16, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = skimage_rgb2ycbcr(image.permute(1, 2, 0).numpy())  # (H, W, 3), 0..255 scale
    ours = (rgb_to_ycbcr(image) * 255).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)
    ours_luma = (rgb_to_luma(image) * 255)[0].numpy()
    np.testing.assert_allclose(ours_luma, reference[..., 0], rtol=0, atol=1e-9)


def test_luma_shapes_and_gray_passthrough() -> None:
    batch = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(2))
    luma = rgb_to_luma(batch)
    assert luma.shape == (2, 1, 5, 6)
    torch.testing.assert_close(luma, rgb_to_ycbcr(batch)[:, :1])
    gray = torch.rand(1, 5, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(rgb_to_luma(gray), gray)  # the papers' scripts leave gray images alone


def test_gray_stored_as_rgb_comes_back_as_its_gray_values() -> None:
    levels = torch.arange(256, dtype=torch.float32).reshape(1, 16, 16) / 255
    gray = rgb_to_gray(levels.expand(3, -1, -1))
    assert gray.shape == (1, 16, 16)
    torch.testing.assert_close(gray, levels, rtol=0, atol=1e-6)
    assert torch.equal(quantize(gray), levels)


# ---------------------------------------------------------------- bundled photos


def test_bundled_samples() -> None:
    assert sample_names() == [
        "astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "ihc", "retina", "rocket"
    ]
    for name in sample_names():
        assert sample_path(name).is_file()
    astronaut = load_sample("astronaut")
    assert astronaut.shape == (3, 512, 512) and astronaut.dtype == torch.float32
    assert 0.0 <= float(astronaut.min()) and float(astronaut.max()) <= 1.0 and float(astronaut.std()) > 0.1
    assert load_sample("camera").shape == (1, 512, 512)
    assert load_sample("camera", mode="rgb").shape == (3, 512, 512)
    assert load_sample("rocket").shape == (3, 427, 640)  # a JPEG
    with pytest.raises(ValueError, match="astronaut"):
        sample_path("lenna")


def test_decode_image_reads_bytes_as_load_image_reads_the_file(tmp_path) -> None:
    from sr_teach.images import decode_image

    path = tmp_path / "photo.png"
    save_image(load_sample("chelsea")[:, :20, :30], path)
    assert torch.equal(decode_image(path.read_bytes()), load_image(path))
    with pytest.raises(ImageError, match="^it is not an image Pillow can read"):
        decode_image(b"these are not the pixels you are looking for")
    with pytest.raises(ImageError, match="upload.png could not be decoded"):
        decode_image(path.read_bytes()[:60], "upload.png")


# ---------------------------------------------------------------- issue 11: huge images, EXIF, modes I and F


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG that claims a size but holds one row of pixels: Pillow reads the size without decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    compressor = zlib.compressobj()
    first_row = compressor.compress(bytes(1 + 3 * width)) + compressor.flush(zlib.Z_SYNC_FLUSH)  # the stream goes on
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", first_row))
    return path


@pytest.mark.parametrize("side", [15_000, 21_000])  # over the limit; and over twice it, where Pillow itself refuses
def test_a_decompression_bomb_is_an_image_error(tmp_path: Path, side: int) -> None:
    bomb = header_only_png(tmp_path / "bomb.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(ImageError, match="bomb.png .*megapixels.*SR_TEACH_MAX_PIXELS or pass --max-pixels"):
            load_image(bomb)
        with pytest.raises(ImageError, match="megapixels"):
            decode_image(bomb.read_bytes(), "upload.png")


def test_the_pixel_limit_comes_from_the_environment_at_each_call(tmp_path: Path, monkeypatch) -> None:
    save_image(torch.rand(3, 40, 40), tmp_path / "forty.png")  # 1,600 pixels
    save_image(torch.rand(3, 30, 30), tmp_path / "thirty.png")  # 900
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "1000")
    assert max_pixels() == 1000
    with pytest.raises(ImageError, match="forty.png is 40 x 40 .* over the limit"):
        load_image(tmp_path / "forty.png")
    assert Image.MAX_IMAGE_PIXELS == 1000  # Pillow's own check follows sr_teach's
    assert load_image(tmp_path / "thirty.png").shape == (3, 30, 30)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "1e4")
    assert load_image(tmp_path / "forty.png").shape == (3, 40, 40)
    for bad in ("lots", "-5", "0", "inf"):
        monkeypatch.setenv(MAX_PIXELS_VARIABLE, bad)
        with pytest.raises(ValueError, match="SR_TEACH_MAX_PIXELS"):
            max_pixels()


def test_the_default_limit_allows_100_megapixels_but_not_13000_squared_x4(monkeypatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_VARIABLE, raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS
    check_pixels(10_000, 10_000)  # a 100-megapixel output
    with pytest.raises(ImageError, match=r"52,000 x 52,000 = 2,704 megapixels"):
        check_pixels(13_000 * 4, 13_000 * 4, "the output")


def test_image_size_reads_only_the_header(tmp_path: Path) -> None:
    assert images.image_size(header_only_png(tmp_path / "claim.png", 300, 200)) == (200, 300)
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "claim.png")  # there are no pixels to decode


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone held upright stores the sensor's landscape pixels and the tag 6: 'turn me 90 degrees clockwise'."""
    stored = np.zeros((16, 32, 3), dtype=np.uint8)  # 16 high, 32 wide: red left half, blue right half
    stored[:, :16, 0] = 255
    stored[:, 16:, 2] = 255
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = load_image(tmp_path / "phone.jpg")
    assert upright.shape == (3, 32, 16)  # portrait, as a viewer shows it
    assert images.image_size(tmp_path / "phone.jpg") == (32, 16)
    # turned clockwise, the left (red) half becomes the top
    assert float(upright[0, :14].mean()) > 0.9 and float(upright[2, :14].mean()) < 0.1
    assert float(upright[2, 18:].mean()) > 0.9 and float(upright[0, 18:].mean()) < 0.1
    Image.fromarray(stored).save(tmp_path / "untagged.jpg", quality=95)
    assert load_image(tmp_path / "untagged.jpg").shape == (3, 16, 32)


@pytest.mark.parametrize("values, white", [
    ([0, 128, 255], 255),  # 8-bit data in a 32-bit integer image: not black
    ([0, 256, 65535], 65535),  # 16-bit data
])
def test_mode_i_is_read_in_its_own_range(tmp_path: Path, values, white) -> None:
    pil_image = Image.fromarray(np.array([values], dtype=np.int32))
    assert pil_image.mode == "I"
    pil_image.save(tmp_path / "deep.tif")
    wanted = expected([[value / white for value in values]])
    assert_pixels(load_image(tmp_path / "deep.tif"), wanted)
    assert_pixels(images.pil_to_tensor(pil_image), wanted)


def test_a_dark_16_bit_pgm_stays_16_bit(tmp_path: Path) -> None:
    """Pillow opens a 16-bit PGM as mode I; its values are 16-bit whatever their range."""
    (tmp_path / "dark.pgm").write_bytes(b"P5\n2 1\n65535\n" + np.array([0, 255], dtype=">u2").tobytes())
    assert_pixels(load_image(tmp_path / "dark.pgm"), expected([[0.0, 255 / 65535]]))


@pytest.mark.parametrize("values, white", [([0.0, 0.25, 1.0], 1.0), ([0.0, 64.0, 255.0], 255.0)])
def test_mode_f_is_read_in_its_own_range(tmp_path: Path, values, white) -> None:
    Image.fromarray(np.array([values], dtype=np.float32)).save(tmp_path / "float.tif")
    assert_pixels(load_image(tmp_path / "float.tif"), expected([[value / white for value in values]]))


@pytest.mark.parametrize("array, message", [
    (np.array([[-5, 100]], dtype=np.int32), "32-bit integers run from -5 to 100"),
    (np.array([[0, 70_000]], dtype=np.int32), "32-bit integers run from 0 to 70,000"),
    (np.array([[0.0, 300.0]], dtype=np.float32), "floats run from 0 to 300"),
    (np.array([[-0.5, 0.5]], dtype=np.float32), "floats run from -0.5 to 0.5"),
    (np.array([[0.0, np.nan]], dtype=np.float32), "floats run from"),
])
def test_modes_i_and_f_out_of_any_known_range_are_refused(tmp_path: Path, array, message) -> None:
    Image.fromarray(array).save(tmp_path / "odd.tif")
    with pytest.raises(ImageError, match=f"odd.tif: its {message}.*rescale"):
        load_image(tmp_path / "odd.tif")


# ---------------------------------------------------------------- saving a stripe at a time


@pytest.mark.parametrize("channels", [1, 3])
def test_save_stripes_writes_the_same_image_as_save_image(tmp_path: Path, channels: int) -> None:
    image = torch.rand(channels, 45, 31, generator=torch.Generator().manual_seed(channels))
    save_image(image, tmp_path / "whole.png")
    stripes = [image[:, :1], image[:, 1:20], image[:, 20:]]
    images.save_stripes(iter(stripes), 45, tmp_path / "stripes.png")
    with Image.open(tmp_path / "stripes.png") as written:
        written.verify()  # the chunks' CRCs and the zlib stream are sound
    assert torch.equal(load_image(tmp_path / "stripes.png"), quantize(image))
    assert torch.equal(load_image(tmp_path / "stripes.png"), load_image(tmp_path / "whole.png"))
    images.save_stripes(iter(stripes), 45, tmp_path / "stripes.tif")  # other formats through Pillow
    assert torch.equal(load_image(tmp_path / "stripes.tif"), quantize(image))


def test_save_stripes_refuses_a_wrong_number_of_rows_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the stripes held 10 rows, not the 12"):
        images.save_stripes(iter([torch.rand(3, 10, 8)]), 12, tmp_path / "short.png")
    assert list(tmp_path.iterdir()) == []


def test_colour_conversions_of_a_big_image_equal_the_whole_formula() -> None:
    image = torch.rand(3, 1100, 1000, generator=torch.Generator().manual_seed(0))  # over a stripe's million pixels
    matrix = images._RGB_TO_YCBCR.float()
    by_formula = torch.einsum("ij,...jhw->...ihw", matrix, image) + images._YCBCR_OFFSET.float()[:, None, None]
    torch.testing.assert_close(rgb_to_ycbcr(image), by_formula, rtol=0, atol=1e-6)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(image)), image, rtol=0, atol=1e-5)
