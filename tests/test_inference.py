"""Tests for sr_teach.inference: image kinds in and out, tiling equals no tiling, Y channel, errors.

The models here are tiny stand-ins with the attributes `upsampling`, `scale(s)` and `num_channels`
that `sr_teach.models` gives its networks, so the tests are fast and do not depend on training.
"""

import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sr_teach import inference
from sr_teach.device import DeviceNotAvailableError
from sr_teach.images import ImageError, load_image, rgb_to_gray, save_image, to_uint8
from sr_teach.inference import (
    receptive_field_radius,
    resolve_scale,
    super_resolve,
    upscale,
    upscale_file,
)
from sr_teach.interpolation import resize

AWKWARD_SIZE = (37, 53)  # odd, prime, not a multiple of any scale or tile size
SCALES = [2, 3, 4]


class PostStandIn(nn.Module):
    """A post-upsampling network: convolutions on the small image, PixelShuffle, one on the big one."""

    upsampling = "post"

    def __init__(self, scale: int, num_channels: int = 3, num_features: int = 8) -> None:
        super().__init__()
        self.scale, self.num_channels = scale, num_channels
        self.layers = nn.Sequential(
            nn.Conv2d(num_channels, num_features, kernel_size=5, padding=2),  # reach 2
            nn.Tanh(),
            nn.Conv2d(num_features, num_channels * scale * scale, kernel_size=3, padding=1),  # reach 1
            nn.PixelShuffle(scale),
            nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1),  # reach 1 high-res = 1/scale
        )

    @property
    def scales(self) -> tuple[int, ...]:
        return (self.scale,)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return self.layers(lr_image)  # (B, C, scale*H, scale*W)


class TransposedStandIn(PostStandIn):
    """A post-upsampling network ending in a 9 x 9 transposed convolution, as FSRCNN."""

    def __init__(self, scale: int, num_channels: int = 3, num_features: int = 8) -> None:
        super().__init__(scale, num_channels, num_features)
        padding = math.ceil((9 - scale) / 2)
        self.layers = nn.Sequential(
            nn.Conv2d(num_channels, num_features, kernel_size=5, padding=2),
            nn.Tanh(),
            nn.ConvTranspose2d(
                num_features, num_channels, kernel_size=9, stride=scale, padding=padding,
                output_padding=2 * padding - (9 - scale),
            ),
        )


class PreStandIn(nn.Module):
    """A pre-upsampling network: image + residual of three convolutions (one dilated, one replicate-padded)."""

    upsampling = "pre"

    def __init__(self, num_channels: int = 3, num_features: int = 8, zero_residual: bool = False) -> None:
        super().__init__()
        self.num_channels, self.scales, self.scale = num_channels, None, None
        self.layers = nn.Sequential(
            nn.Conv2d(num_channels, num_features, kernel_size=3, padding=1, padding_mode="replicate"),  # reach 1
            nn.Tanh(),
            nn.Conv2d(num_features, num_features, kernel_size=3, padding=2, dilation=2),  # reach 2
            nn.Tanh(),
            nn.Conv2d(num_features, num_channels, kernel_size=3, padding=1),  # reach 1
        )
        if zero_residual:  # the model is the identity: upscale is then plain bicubic
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)

    def forward(self, interpolated_image: torch.Tensor) -> torch.Tensor:
        return interpolated_image + self.layers(interpolated_image)  # (B, C, H, W)


class BicubicPostStandIn(nn.Module):
    """A 'post' model that is just bicubic interpolation: upscale should then equal `resize`."""

    upsampling = "post"

    def __init__(self, scale: int, num_channels: int) -> None:
        super().__init__()
        self.scale, self.scales, self.num_channels = scale, (scale,), num_channels

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return resize(lr_image, scale=self.scale, clamp=False)  # (B, C, scale*H, scale*W)


def smooth_image(num_channels: int, size: tuple[int, int] = AWKWARD_SIZE, seed: int = 0) -> torch.Tensor:
    """A random but smooth (C, H, W) image in [0.1, 0.9]: bicubic never overshoots [0, 1] on it."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_channels, 6, 6, generator=generator) * 0.6 + 0.2
    return resize(coarse, size=size, method="bilinear")


def make_model(kind: str, scale: int, num_channels: int = 3) -> nn.Module:
    """A stand-in with fixed random weights: "post" (PixelShuffle), "transposed" or "pre"."""
    torch.manual_seed(scale)
    if kind == "pre":
        return PreStandIn(num_channels)
    return {"post": PostStandIn, "transposed": TransposedStandIn}[kind](scale, num_channels)


# --- what goes in comes out, bigger ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_pil_in_pil_out(mode: str) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (11, 17, 3), dtype=np.uint8)).convert(mode)
    for model in (PostStandIn(scale=3, num_channels=1), PreStandIn(num_channels=3)):
        result = upscale(model, image, scale=3)
        assert isinstance(result, Image.Image)
        assert result.mode == mode
        assert result.size == (51, 33)


def test_numpy_in_numpy_out() -> None:
    rng = np.random.default_rng(0)
    model = PostStandIn(scale=2, num_channels=1)
    for shape in [(11, 17), (11, 17, 1), (11, 17, 3)]:
        array_uint8 = rng.integers(0, 256, shape, dtype=np.uint8)
        result = upscale(model, array_uint8)
        assert result.dtype == np.uint8 and result.shape == (22, 34, *shape[2:])
        for dtype in (np.float32, np.float64):
            result = upscale(model, (array_uint8 / 255.0).astype(dtype))
            assert result.dtype == dtype and result.shape == (22, 34, *shape[2:])
            assert result.min() >= 0 and result.max() <= 1


def test_tensor_in_tensor_out() -> None:
    model = PostStandIn(scale=2)
    image = smooth_image(3)
    single = upscale(model, image)
    assert single.shape == (3, 74, 106) and single.dtype == torch.float32
    batch = torch.stack([image, smooth_image(3, seed=1), smooth_image(3, seed=2)])
    for batch_size in (1, 2, 3):
        result = upscale(model, batch, batch_size=batch_size)
        assert result.shape == (3, 3, 74, 106)
        assert torch.allclose(result[0], single, atol=1e-6), "an image in a batch must come out as it would alone"
    assert upscale(model, image.double()).dtype == torch.float64
    assert upscale(model, (image * 255).round().to(torch.uint8)).dtype == torch.uint8


def test_untiled_is_the_model_on_the_whole_image() -> None:
    image = smooth_image(3)
    post = PostStandIn(scale=3)
    with torch.no_grad():
        expected = post(image[None])[0].clamp(0, 1)
    assert (upscale(post, image) - expected).abs().max() < 1e-6
    pre = PreStandIn()
    with torch.no_grad():
        expected = pre(resize(image, scale=3)[None])[0].clamp(0, 1)
    assert (upscale(pre, image, scale=3) - expected).abs().max() < 1e-6


# --- tiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kind", ["post", "transposed", "pre"])
def test_tiled_equals_untiled(kind: str, scale: int) -> None:
    model = make_model(kind, scale)
    image = torch.rand(3, *AWKWARD_SIZE, generator=torch.Generator().manual_seed(scale))
    untiled = upscale(model, image, scale=scale)
    for batch_size in (1, 4):
        tiled = upscale(model, image, scale=scale, tile_size=16, batch_size=batch_size)
        assert (tiled - untiled).abs().max() < 1e-5, f"tiles of a {kind} model at x{scale} leave seams"


@pytest.mark.parametrize("kind", ["post", "pre"])
def test_tiled_equals_untiled_on_luma_and_batches(kind: str) -> None:
    model = make_model(kind, scale=3, num_channels=1)
    batch = torch.rand(2, 3, *AWKWARD_SIZE, generator=torch.Generator().manual_seed(0))
    untiled = upscale(model, batch, scale=3)
    tiled = upscale(model, batch, scale=3, tile_size=16, batch_size=5)
    assert (tiled - untiled).abs().max() < 1e-5


def test_tiled_equals_untiled_at_a_fractional_scale() -> None:
    image = torch.rand(3, *AWKWARD_SIZE, generator=torch.Generator().manual_seed(0))
    model = PreStandIn()
    untiled = upscale(model, image, scale=2.5)
    assert untiled.shape == (3, 93, 133)  # ceil(37 * 2.5), ceil(53 * 2.5), as resize makes it
    assert (upscale(model, image, scale=2.5, tile_size=16) - untiled).abs().max() < 1e-5


def test_big_images_are_tiled_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    model = PostStandIn(scale=2)
    image = torch.rand(3, *AWKWARD_SIZE, generator=torch.Generator().manual_seed(0))
    untiled = upscale(model, image)
    calls = []
    original = inference.run_model
    monkeypatch.setattr(inference, "run_model", lambda *args: calls.append(args[1].shape) or original(*args))
    monkeypatch.setattr(inference, "AUTO_TILE_OUTPUT_PIXELS", 40 * 40)
    monkeypatch.setattr(inference, "MIN_AUTO_TILE_SIZE", 8)
    tiled = upscale(model, image)
    assert len(calls) > 1, "an image above the pixel budget should be cut into tiles"
    assert all(shape[-2] * shape[-1] * 4 <= 40 * 40 for shape in calls), f"tiles over the budget: {calls}"
    assert (tiled - untiled).abs().max() < 1e-5


def test_too_little_overlap_warns() -> None:
    with pytest.warns(UserWarning, match="receptive field"):
        upscale(PostStandIn(scale=2), smooth_image(3), tile_size=16, tile_overlap=1)


# --- channels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_luma_model_with_nothing_to_add_is_bicubic(scale: int) -> None:
    """A Y-channel model that changes nothing: what remains is the bicubic of Y, Cb, Cr = bicubic of RGB."""
    image = smooth_image(3)
    expected = resize(image, scale=scale)
    pre = PreStandIn(num_channels=1, zero_residual=True)
    post = BicubicPostStandIn(scale, num_channels=1)
    for model in (pre, post):
        result = upscale(model, image, scale=scale)
        assert (result - expected).abs().max() < 1e-5, f"{type(model).__name__} on Y is not bicubic on RGB"


def test_gray_image_through_an_rgb_model() -> None:
    gray = smooth_image(1)
    result = upscale(PreStandIn(num_channels=3, zero_residual=True), gray, scale=2)
    assert result.shape == (1, 74, 106)
    assert (result - resize(gray, scale=2)).abs().max() < 1e-5
    model = PostStandIn(scale=2, num_channels=3)
    with torch.no_grad():
        expected = rgb_to_gray(model(gray.expand(3, -1, -1)[None])[0].clamp(0, 1))
    assert (upscale(model, gray) - expected).abs().max() < 1e-6


def test_model_dtype_is_respected() -> None:
    model = PostStandIn(scale=2).double()
    image = smooth_image(3)
    with torch.no_grad():
        expected = model(image.double()[None])[0].clamp(0, 1).float()
    assert (upscale(model, image) - expected).abs().max() < 1e-6
    assert (upscale(model, image, device="cpu") - expected).abs().max() < 1e-6


def test_model_mode_is_restored_and_no_gradients_are_kept() -> None:
    model = PostStandIn(scale=2).train()
    result = upscale(model, smooth_image(3).requires_grad_())
    assert model.training, "upscale must put a model that was training back in training mode"
    assert not result.requires_grad


# --- errors -----------------------------------------------------------------------------------


def test_scale_errors() -> None:
    image = smooth_image(3)
    with pytest.raises(ValueError, match="built for x2"):
        upscale(PostStandIn(scale=2), image, scale=3)
    assert resolve_scale(PostStandIn(scale=2), 2) == 2
    with pytest.raises(ValueError, match="scale="):
        upscale(PreStandIn(), image)  # a pre model needs to be told
    single_scale = PreStandIn()
    single_scale.scales = (4,)
    assert resolve_scale(single_scale) == 4
    with pytest.raises(ValueError, match="serves the scales"):
        upscale(single_scale, image, scale=3)
    with pytest.raises(ValueError, match="at least 1"):
        upscale(PreStandIn(), image, scale=0.5)


def test_channel_errors() -> None:
    model = PostStandIn(scale=2)
    with pytest.raises(ValueError, match="RGBA"):
        upscale(model, np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="transpose"):
        upscale(model, np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="1 \\(gray\\) or 3 \\(RGB\\) channels"):
        upscale(model, torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        upscale(model, np.full((8, 8), 200.0))
    with pytest.raises(ValueError, match="upsampling"):
        upscale(nn.Conv2d(3, 3, kernel_size=3, padding=1), torch.zeros(3, 8, 8))


def test_image_too_small_for_the_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 3, kernel_size=9))  # no padding: needs 9 x 9, and shrinks the image
    model.upsampling, model.num_channels = "pre", 3
    with pytest.raises(ValueError, match="too small"):
        upscale(model, torch.rand(3, 2, 2), scale=2)
    with pytest.raises(ValueError, match="no padding"):
        upscale(model, torch.rand(3, 20, 20), scale=2)


# --- receptive field --------------------------------------------------------------------------


def measured_radius(model: nn.Module, size: int = 31) -> int:
    """How far from a bumped input pixel the output changes, in input pixels (an independent check)."""
    model = model.double()
    image = torch.rand(1, model.num_channels, size, size, dtype=torch.float64)
    bumped = image.clone()
    centre = size // 2
    bumped[..., centre, centre] += 1.0
    with torch.no_grad():
        changed = (model(bumped) - model(image)).abs().amax(dim=(0, 1)) > 1e-12  # (H_out, W_out)
    factor = changed.shape[-1] // size
    rows, columns = changed.nonzero().unbind(dim=1)
    return int(max((rows // factor - centre).abs().max(), (columns // factor - centre).abs().max()))


def test_receptive_field_of_known_stacks() -> None:
    srcnn_like = nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=9, padding=4), nn.Conv2d(4, 4, kernel_size=5, padding=2),
        nn.Conv2d(4, 1, kernel_size=5, padding=2),
    )
    assert receptive_field_radius(srcnn_like) == 4 + 2 + 2
    assert receptive_field_radius(PreStandIn()) == 1 + 2 + 1  # the dilated 3 x 3 reaches 2
    for scale in SCALES:
        assert receptive_field_radius(PostStandIn(scale)) == math.ceil(2 + 1 + 1 / scale)
    # FSRCNN's 9 x 9 deconvolution reaches 2 (x2: padding 4), 1 (x3: padding 3), 1 (x4: padding 3) input pixels
    assert [receptive_field_radius(TransposedStandIn(scale)) - 2 for scale in SCALES] == [2, 1, 1]
    assert receptive_field_radius(nn.Sequential(nn.ReLU())) == 0


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kind", ["post", "transposed", "pre"])
def test_receptive_field_matches_a_measurement(kind: str, scale: int) -> None:
    model = make_model(kind, scale)
    measured = measured_radius(model)
    computed = receptive_field_radius(model)
    assert measured <= computed <= measured + 1, f"computed {computed}, measured {measured}"
    if kind != "post":  # whole input pixels everywhere: the count is exact
        assert computed == measured


# --- the real models, when sr_teach.models is there ---------------------------------------------


def test_real_models_tile_exactly() -> None:
    models = pytest.importorskip("sr_teach.models")
    image = torch.rand(3, 29, 41, generator=torch.Generator().manual_seed(0))
    candidates = [
        models.SRCNN(num_channels=1),
        models.VDSR(num_channels=3, depth=5, num_features=8),
        models.FSRCNN(scale=2, num_channels=1),
        models.ESPCN(scale=4, num_channels=3),
        models.PostUpsamplingNet(scale=3, upsampler="transposed_conv"),
    ]
    for model in candidates:
        untiled = upscale(model, image, scale=getattr(model, "scale", None) or 3)
        tiled = upscale(model, image, scale=getattr(model, "scale", None) or 3, tile_size=12, batch_size=3)
        assert (tiled - untiled).abs().max() < 1e-5, f"{type(model).__name__} shows tile seams"


# --- the path a student can walk by hand --------------------------------------------------------


def test_upscale_is_to_tensor_super_resolve_to_image_and_each_step_can_be_called_alone() -> None:
    from sr_teach.images import rgb_to_ycbcr, to_image, to_tensor, ycbcr_to_rgb
    from sr_teach.inference import run_model, super_resolve

    array = (smooth_image(3).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3) uint8
    for model in (PostStandIn(scale=3, num_channels=1), PreStandIn(num_channels=1)):
        images, kind = to_tensor(array)  # (1, 3, H, W) in [0, 1]
        assert images.shape == (1, 3, *AWKWARD_SIZE) and kind.container == "numpy"
        ycbcr = rgb_to_ycbcr(images)  # the model sees Y; Cb and Cr are enlarged by bicubic
        enlarged = resize(ycbcr, scale=3)
        with torch.no_grad():
            if model.upsampling == "pre":
                luma = run_model(model.eval(), enlarged[:, :1])  # the model sharpens the bicubic Y
            else:
                luma = run_model(model.eval(), ycbcr[:, :1], factor=3)  # the model enlarges Y itself
            by_hand = ycbcr_to_rgb(torch.cat([luma.clamp(0, 1), enlarged[:, 1:]], dim=1)).clamp(0, 1)
            assert (super_resolve(model, images, 3) - by_hand).abs().max() < 1e-6  # colours back in one convolution (export.colours_from_luma)
        assert np.array_equal(to_image(by_hand, kind), upscale(model, array, scale=3))


# --- issue 11: huge results, absurd scales, devices, and files a stripe at a time ------------------


def test_absurd_scales_are_clean_errors() -> None:
    image = smooth_image(3)
    for scale in (math.inf, math.nan):
        with pytest.raises(ValueError, match="at least 1"):
            upscale(PreStandIn(), image, scale=scale)
    for scale in (1e6, 1e300):  # 1e6 ran without end, 1e300 overflowed an int
        with pytest.raises(ImageError, match="over the limit .*SR_TEACH_MAX_PIXELS or pass --max-pixels"):
            upscale(PreStandIn(), image, scale=scale)
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 11_000, 11_000)  # a view: no memory behind it
    with pytest.raises(ImageError, match="22,000 x 22,000 = 484 megapixels, over the limit"):
        super_resolve(PostStandIn(scale=2), huge, 2)


def test_a_device_that_is_not_there_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceNotAvailableError, match="CUDA is not available"):
        upscale(PostStandIn(scale=2), smooth_image(3), device="cuda")
    save_image(smooth_image(3), tmp_path / "in.png")
    with pytest.raises(DeviceNotAvailableError, match="CUDA is not available"):
        upscale_file(tmp_path / "in.png", tmp_path / "out.png", PostStandIn(scale=2), device="cuda")


def test_a_model_that_folds_blocks_tiles_exactly() -> None:
    """VDSR's pixel_unshuffle=2 folds 2 x 2 blocks: a tile that starts on an odd row sees other blocks."""
    models = pytest.importorskip("sr_teach.models")
    model = models.VDSR(num_channels=1, depth=4, num_features=8, pixel_unshuffle=2)
    image = torch.rand(3, 29, 41, generator=torch.Generator().manual_seed(0))
    untiled = upscale(model, image, scale=2)
    for tile_size in (11, 16):  # windows that started on odd rows before the fix
        assert (upscale(model, image, scale=2, tile_size=tile_size) - untiled).abs().max() < 1e-5
    assert measured_radius(model) <= receptive_field_radius(model)


def photo_file(path, num_channels: int, size: tuple[int, int] = (120, 50)):
    """An 8-bit image file whose x2 or x3 result has more than one band of BAND_ROWS rows."""
    image = smooth_image(num_channels, size) + 0.05 * torch.rand(num_channels, *size, generator=torch.Generator())
    save_image(image.clamp(0, 1), path)
    return path


def file_pixels(path) -> np.ndarray:
    with Image.open(path) as written:
        return np.asarray(written).astype(np.int16)


@pytest.mark.parametrize("kind, scale", [("post", 3), ("transposed", 2), ("pre", 2.5)])
@pytest.mark.parametrize("image_channels, model_channels", [(3, 1), (1, 1), (3, 3), (1, 3)])
def test_upscale_file_writes_what_upscale_returns(tmp_path, monkeypatch, kind, scale, image_channels, model_channels):
    monkeypatch.setattr(inference, "STRIPE_OUTPUT_PIXELS", 1)  # a stripe of one band each
    monkeypatch.setattr(inference, "STRIPE_TILE_SIZE", 32)  # and tiles within it
    model = make_model(kind, int(scale) if kind != "pre" else 2, model_channels)
    source = photo_file(tmp_path / "in.png", image_channels)
    size = upscale_file(source, tmp_path / "out.png", model, scale)
    expected = to_uint8(upscale(model, load_image(source), scale=scale)).astype(np.int16)
    written = file_pixels(tmp_path / "out.png")
    assert written.shape == expected.shape and size == expected.shape[:2]
    assert np.abs(written - expected).max() <= 1 and (written == expected).mean() > 0.999  # float rounding at most


@pytest.mark.parametrize("method", ["bicubic", "lanczos", "nearest", "torch_bicubic", "torch_area", "pil_bicubic"])
@pytest.mark.parametrize("scale", [2, 2.5, 3])  # PyTorch's and Pillow's methods: in stripes at 2 and 3
def test_upscale_file_with_an_interpolation_method_is_exact(tmp_path, monkeypatch, method: str, scale: float) -> None:
    monkeypatch.setattr(inference, "STRIPE_OUTPUT_PIXELS", 1)
    source = photo_file(tmp_path / "in.png", 3)
    upscale_file(source, tmp_path / "out.png", method, scale)
    written = file_pixels(tmp_path / "out.png")
    expected = to_uint8(resize(load_image(source), scale, method=method)).astype(np.int16)
    if method.startswith("torch") and scale == 3:  # PyTorch's coordinates, (row + 0.5) / 3, round per row
        assert np.abs(written - expected).max() <= 1 and (written == expected).mean() > 0.99
    else:
        assert np.array_equal(written, expected)


def test_upscale_file_refuses_a_huge_result_before_decoding(tmp_path) -> None:
    """13000 x 13000 is a 190 KB PNG when flat; x4 it would be 2.7 gigapixels (the header says so)."""
    header = struct.pack(">IIBBBBB", 13_000, 13_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    (tmp_path / "flat.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + b"\0\0\0\0IDAT\x35\xaf\x06\x1e")  # no pixels
    with pytest.raises(ImageError, match="52,000 x 52,000 = 2,704 megapixels, over the limit"):
        upscale_file(tmp_path / "flat.png", tmp_path / "big.png", "bicubic", 4)
    with pytest.raises(ImageError, match="over the limit"):
        upscale_file(tmp_path / "flat.png", tmp_path / "big.png", PostStandIn(scale=4))
    assert not (tmp_path / "big.png").exists()


def test_upscale_file_errors(tmp_path) -> None:
    source = photo_file(tmp_path / "in.png", 3)
    (tmp_path / "taken.png").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="taken.png exists"):
        upscale_file(source, tmp_path / "taken.png", "bicubic", 2)
    assert (tmp_path / "taken.png").read_bytes() == b"keep me"
    with pytest.raises(ValueError, match="unknown upscaler 'bicubc'"):
        upscale_file(source, tmp_path / "out.png", "bicubc", 2)
    with pytest.raises(ValueError, match="scale=2"):
        upscale_file(source, tmp_path / "out.png", "bicubic")
    with pytest.raises(ValueError, match="built for x2"):
        upscale_file(source, tmp_path / "out.png", PostStandIn(scale=2), 3)
    with pytest.raises(FileNotFoundError):
        upscale_file(tmp_path / "missing.png", tmp_path / "out.png", "bicubic", 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.png", "taken.png"]
