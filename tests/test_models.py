"""Tests for sr_teach.models: shapes, gradients, seeds, rebuilding, ICNR and published sizes."""

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.interpolation import resize
from sr_teach.models import (
    ESPCN,
    FSRCNN,
    MODELS,
    SR_MODELS,
    SRCNN,
    VDSR,
    PostUpsamplingNet,
    build_model,
    count_parameters,
    icnr_,
    transposed_conv_padding,
)

SCALES = [2, 3, 4, 8]
LR_SIZE = 5  # small and odd, so the tests are fast and off-by-one errors show

# Small variants keep VDSR fast; every constructor gets scale and num_channels from the test.
MODEL_FACTORIES = {
    "srcnn": lambda scale, num_channels: SRCNN(scale=scale, num_channels=num_channels),
    "srcnn_915": lambda scale, num_channels: SRCNN(scale=scale, num_channels=num_channels, kernel_sizes=(9, 1, 5)),
    "vdsr": lambda scale, num_channels: VDSR(scale=scale, num_channels=num_channels, depth=6, num_features=16),
    "fsrcnn": lambda scale, num_channels: FSRCNN(scale=scale, num_channels=num_channels),
    "espcn": lambda scale, num_channels: ESPCN(scale=scale, num_channels=num_channels),
    "espcn_relu": lambda scale, num_channels: ESPCN(scale=scale, num_channels=num_channels, activation="relu"),
    "post_pixel_shuffle": lambda scale, num_channels: PostUpsamplingNet(scale=scale, num_channels=num_channels),
    "post_transposed": lambda scale, num_channels: PostUpsamplingNet(
        scale=scale, num_channels=num_channels, upsampler="transposed_conv"
    ),
    "post_shuffle_conv": lambda scale, num_channels: PostUpsamplingNet(
        scale=scale, num_channels=num_channels, upsampler="shuffle_conv"
    ),
}


def model_input(model: nn.Module, scale: int, num_channels: int, batch_size: int = 2) -> torch.Tensor:
    """A random batch of the size the model expects: interpolated for pre, low-resolution for post."""
    size = LR_SIZE * scale if model.upsampling == "pre" else LR_SIZE
    return torch.rand(batch_size, num_channels, size, size)


@pytest.mark.parametrize("num_channels", [1, 3])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("variant", MODEL_FACTORIES)
def test_output_shape(variant: str, scale: int, num_channels: int) -> None:
    model = MODEL_FACTORIES[variant](scale, num_channels)
    with torch.no_grad():
        output = model(model_input(model, scale, num_channels))
    # pre: same size as the (already upscaled) input; post: scale times the low-resolution input
    assert output.shape == (2, num_channels, LR_SIZE * scale, LR_SIZE * scale)
    assert output.dtype == torch.float32


@pytest.mark.parametrize("variant", MODEL_FACTORIES)
def test_upsampling_and_scales(variant: str) -> None:
    model = MODEL_FACTORIES[variant](3, 1)
    if model.upsampling == "pre":
        assert model.scales is None  # one set of weights, any scale
    else:
        assert model.upsampling == "post"
        assert model.scales == (3,)


def test_pre_models_are_the_papers_pre_upsampling_ones() -> None:
    assert [name for name, model_class in MODELS.items() if model_class.upsampling == "pre"] == ["srcnn", "vdsr"]


@pytest.mark.parametrize("variant", MODEL_FACTORIES)
def test_gradients_reach_every_parameter(variant: str) -> None:
    torch.manual_seed(0)
    model = MODEL_FACTORIES[variant](2, 1)
    output = model(model_input(model, 2, 1))
    F.mse_loss(output, torch.rand_like(output)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"no gradient reached {name}"
        assert parameter.grad.abs().sum() > 0, f"the gradient of {name} is all zeros"


def test_srcnn_paper_init_still_passes_gradients() -> None:
    torch.manual_seed(0)
    model = SRCNN(init="paper")
    assert model.patch_extraction.weight.std().item() == pytest.approx(0.001, rel=0.1)
    output = model(torch.rand(1, 1, 12, 12))
    F.mse_loss(output, torch.rand_like(output)).backward()
    assert all(parameter.grad.abs().sum() > 0 for parameter in model.parameters())


@pytest.mark.parametrize("variant", MODEL_FACTORIES)
def test_same_seed_same_model(variant: str) -> None:
    torch.manual_seed(1234)
    first = MODEL_FACTORIES[variant](3, 1)
    torch.manual_seed(1234)
    second = MODEL_FACTORIES[variant](3, 1)
    image = model_input(first, 3, 1)
    with torch.no_grad():
        assert torch.equal(first(image), second(image))
    torch.manual_seed(4321)
    third = MODEL_FACTORIES[variant](3, 1)
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), third.parameters()))


@pytest.mark.parametrize("variant", MODEL_FACTORIES)
def test_config_rebuilds_the_model(variant: str) -> None:
    model = MODEL_FACTORIES[variant](4, 3)
    name = next(name for name, model_class in MODELS.items() if isinstance(model, model_class))
    rebuilt = build_model(name, **asdict(model.config))
    rebuilt.load_state_dict(model.state_dict())  # strict: same layers, same shapes
    assert rebuilt.config == model.config
    image = model_input(model, 4, 3)
    with torch.no_grad():
        assert torch.equal(rebuilt(image), model(image))


def test_config_survives_a_weights_only_checkpoint(tmp_path) -> None:
    model = SRCNN(scale=3, kernel_sizes=(9, 1, 5))
    path = tmp_path / "srcnn.pt"
    torch.save({"name": "srcnn", "config": asdict(model.config), "state_dict": model.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    rebuilt = build_model(checkpoint["name"], **checkpoint["config"])
    rebuilt.load_state_dict(checkpoint["state_dict"])
    assert rebuilt.config == model.config


def test_build_model_every_name_with_the_same_arguments() -> None:
    for name in SR_MODELS:
        model = build_model(name, scale=2, num_channels=3)
        assert isinstance(model, MODELS[name])
        assert model.config.scale == 2 and model.scales in (None, (2,))


def test_build_model_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'edsr'") as error:
        build_model("edsr")
    for name in MODELS:
        assert name in str(error.value)


def test_build_model_passes_keyword_arguments() -> None:
    model = build_model("fsrcnn", scale=4, num_features=32, num_shrunk_features=5, num_mapping_layers=1)
    assert asdict(model.config) == {
        "scale": 4, "num_channels": 1, "input_channels": None, "mask_input": False, "num_features": 32,
        "num_shrunk_features": 5, "num_mapping_layers": 1, "global_residual": False,
    }
    with pytest.raises(TypeError):
        build_model("espcn", depth=3)


@pytest.mark.parametrize("model_class", list(MODELS.values()))
def test_forward_explains_a_missing_batch_dimension(model_class: type[nn.Module]) -> None:
    model = model_class()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*unsqueeze\(0\)"):
        model(torch.rand(1, 12, 12))


@pytest.mark.parametrize("model_class", list(MODELS.values()))
def test_forward_explains_a_wrong_number_of_channels(model_class: type[nn.Module]) -> None:
    model = model_class(num_channels=1)
    with pytest.raises(ValueError, match="num_channels=1.*3 channels"):
        model(torch.rand(1, 3, 12, 12))


def test_forward_explains_8bit_input() -> None:
    with pytest.raises(ValueError, match="255"):
        ESPCN()(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_vdsr_is_residual() -> None:
    model = VDSR(depth=4, num_features=8)
    nn.init.zeros_(model.reconstruction.weight)  # residual = 0, so the output is the input
    image = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        assert torch.equal(model(image), image)


@pytest.mark.parametrize("factor", [2, 4])
def test_vdsr_pixel_unshuffle_folds_blocks_into_channels(factor: int) -> None:
    model = VDSR(depth=4, num_features=8, pixel_unshuffle=factor)
    assert model.input_layer.in_channels == factor**2 and model.reconstruction.out_channels == factor**2
    image = torch.rand(2, 1, 13, 18)  # sides the factor does not divide: padded, then cropped back
    with torch.no_grad():
        assert model(image).shape == image.shape
        # The convolutions run on the folded grid: the residual equals one computed by hand.
        padded = nn.functional.pad(image, (0, -18 % factor, 0, -13 % factor), mode="replicate")
        features = model.hidden_layers(model.relu(model.input_layer(nn.functional.pixel_unshuffle(padded, factor))))
        residual = nn.functional.pixel_shuffle(model.reconstruction(features), factor)[..., :13, :18]
        torch.testing.assert_close(model(image), image + residual)


def test_vdsr_small_reconstruction_init_starts_at_the_input() -> None:
    image = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        he_change = (VDSR(depth=6, num_features=16)(image) - image).abs().mean()
        small_change = (VDSR(depth=6, num_features=16, reconstruction_std=1e-3)(image) - image).abs().mean()
    assert small_change < 0.01 < he_change
    model = VDSR(depth=6, num_features=16, pixel_unshuffle=2, reconstruction_std=1e-3)
    assert VDSR(**asdict(model.config)).config == model.config
    assert VDSR(model.config, depth=8).config.pixel_unshuffle == 2  # a config, with one change


def test_srcnn_padding_keeps_the_size_and_replicates_by_default() -> None:
    assert SRCNN().patch_extraction.padding_mode == "replicate"
    assert SRCNN(padding_mode="zeros").patch_extraction.padding_mode == "zeros"
    with pytest.raises(ValueError, match="odd"):
        SRCNN(kernel_sizes=(9, 4, 5))


@pytest.mark.parametrize("name, options, message", [
    ("srcnn", {"num_features": (64,)}, "n1, n2"),
    ("srcnn", {"init": "xavier"}, "init"),
    ("vdsr", {"depth": 1}, "depth >= 2"),
    ("espcn", {"activation": "gelu"}, "tanh"),
    ("post", {"upsampler": "bilinear"}, "transposed_conv"),
    ("espcn", {"num_channels": 4}, "num_channels"),
    ("fsrcnn", {"scale": 0}, "scale"),
])
def test_bad_settings_raise_value_errors_that_say_what_is_allowed(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(name, **options)


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5, 8, 9, 12, 24])
@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_transposed_conv_padding_gives_exactly_scale_times(kernel_size: int, scale: int) -> None:
    if scale == 1 and kernel_size % 2 == 0:
        with pytest.raises(ValueError, match="odd kernel"):
            transposed_conv_padding(kernel_size, scale)
        return
    padding, output_padding = transposed_conv_padding(kernel_size, scale)
    layer = nn.ConvTranspose2d(
        1, 1, kernel_size=kernel_size, stride=scale, padding=padding, output_padding=output_padding
    )
    assert layer(torch.rand(1, 1, 7, 6)).shape == (1, 1, 7 * scale, 6 * scale)


def test_transposed_conv_padding_centres_each_block() -> None:
    # A kernel with a single 1 at its centre copies LR pixel i to HR pixel i*scale + (scale - 1)/2.
    layer = nn.ConvTranspose2d(1, 1, kernel_size=9, stride=3, padding=3, bias=False)
    assert transposed_conv_padding(9, 3) == (3, 0)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 4, 4] = 1.0
        image = torch.zeros(1, 1, 4, 4)
        image[0, 0, 2, 1] = 1.0
        output = layer(image)
    assert output[0, 0, 2 * 3 + 1, 1 * 3 + 1] == 1.0 and output.sum() == 1.0


def is_block_constant(image: torch.Tensor, scale: int) -> bool:
    """True if every scale x scale block of the (B, C, scale*H, scale*W) image holds one value."""
    batch, channels, height, width = image.shape
    sub_pixels = F.pixel_unshuffle(image, scale)  # (B, C*scale*scale, H, W), the blocks' pixels as channels
    sub_pixels = sub_pixels.reshape(batch, channels, scale * scale, height // scale, width // scale)
    return torch.allclose(sub_pixels, sub_pixels[:, :, :1].expand_as(sub_pixels), atol=1e-6)


@pytest.mark.parametrize("scale", SCALES)
def test_icnr_pixel_shuffle_layer_has_no_checkerboard(scale: int) -> None:
    torch.manual_seed(0)
    convolution = nn.Conv2d(4, 3 * scale * scale, kernel_size=3, padding=1)
    icnr_(convolution.weight, scale)
    nn.init.zeros_(convolution.bias)
    shuffle = nn.PixelShuffle(scale)
    constant = torch.full((1, 4, 6, 6), 0.7)
    with torch.no_grad():
        assert is_block_constant(shuffle(convolution(constant)), scale)
        # it holds for any input: the layer starts as "convolution, then nearest-neighbour upsampling"
        assert is_block_constant(shuffle(convolution(torch.rand(1, 4, 6, 6))), scale)
        # without ICNR the same layer paints a checkerboard even on a constant image
        nn.init.kaiming_normal_(convolution.weight)
        assert not is_block_constant(shuffle(convolution(constant)), scale)


def test_icnr_keeps_the_init_distribution() -> None:
    torch.manual_seed(0)
    weight = torch.empty(4 * 64, 64, 3, 3)
    icnr_(weight, scale=2)
    assert weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)  # He: sqrt(2 / fan_in)
    icnr_(weight, scale=2, init=nn.init.zeros_)
    assert weight.abs().sum() == 0
    with pytest.raises(ValueError, match="multiple of 9"):
        icnr_(torch.empty(8, 4, 3, 3), scale=3)


def test_post_upsampling_net_icnr_on_a_constant_image() -> None:
    torch.manual_seed(0)
    constant = torch.full((1, 1, 6, 6), 0.5)
    with torch.no_grad():
        assert is_block_constant(PostUpsamplingNet(scale=2, icnr=True)(constant), 2)
        assert not is_block_constant(PostUpsamplingNet(scale=2, icnr=False)(constant), 2)


def test_shuffle_conv_starts_as_the_pixel_shuffle_and_can_blend_neighbouring_blocks() -> None:
    image = torch.rand(1, 1, 6, 7)
    torch.manual_seed(0)
    shuffle = PostUpsamplingNet(scale=3, upsampler="pixel_shuffle")
    torch.manual_seed(0)
    mix = PostUpsamplingNet(scale=3, upsampler="shuffle_conv")  # the same seed: the same head, body and sub-pixel layer
    high_resolution_convolution = mix.upsampler[2]
    assert isinstance(mix.upsampler[1], nn.PixelShuffle) and high_resolution_convolution.kernel_size == (3, 3)
    assert count_parameters(mix) == count_parameters(shuffle) + 3 * 3 + 1  # one 1 -> 1 kernel and its bias
    with torch.no_grad():
        assert torch.allclose(mix(image), shuffle(image), atol=1e-6)  # the 3 x 3 convolution starts as the identity
        assert is_block_constant(mix(torch.full((1, 1, 6, 6), 0.5)), 3)  # ICNR: no grid at the start
        # The shuffle fills each 3 x 3 block from one position; a 3 x 3 average then reaches into the neighbours.
        high_resolution_convolution.weight.fill_(1 / 9)
        blended = mix(image)
        sub_pixels = F.conv2d(shuffle(image), torch.full((1, 1, 3, 3), 1 / 9), padding=1)
        assert torch.allclose(blended, sub_pixels, atol=1e-6) and not is_block_constant(blended, 3)


def test_pixel_shuffle_and_transposed_conv_have_about_the_same_weights() -> None:
    # 3x3 conv to C*r^2 channels vs. a (3r)x(3r) transposed conv: F*C*9*r^2 weights each
    pixel_shuffle = PostUpsamplingNet(scale=3, upsampler="pixel_shuffle").upsampler[0]
    transposed = PostUpsamplingNet(scale=3, upsampler="transposed_conv").upsampler
    assert pixel_shuffle.weight.numel() == transposed.weight.numel() == 64 * 1 * 9 * 9


def count_weights(model: nn.Module) -> int:
    """Convolution weights only, the way the papers count: no biases, no PReLU slopes."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.ndim == 4)


@pytest.mark.parametrize(
    ("kernel_sizes", "paper_weights"),
    [((9, 1, 5), 8_032), ((9, 3, 5), 24_416), ((9, 5, 5), 57_184)],
)
def test_srcnn_parameters_match_the_paper(kernel_sizes: tuple[int, int, int], paper_weights: int) -> None:
    # The SRCNN paper (TPAMI 2016) counts weights only: f1^2 * c * n1 + f2^2 * n1 * n2 + f3^2 * n2 * c
    f1, f2, f3 = kernel_sizes
    c, n1, n2 = 1, 64, 32
    weights = f1**2 * c * n1 + f2**2 * n1 * n2 + f3**2 * n2 * c
    assert weights == paper_weights
    model = SRCNN(kernel_sizes=kernel_sizes)
    assert count_weights(model) == paper_weights
    # plus one bias per filter: n1 + n2 + c = 97 (so 9-1-5 has 8,129 and 9-5-5 has 57,281)
    assert count_parameters(model) == paper_weights + n1 + n2 + c


def test_srcnn_rgb_parameters() -> None:
    # c = 3: 81*3*64 + 25*64*32 + 25*32*3 weights + 64 + 32 + 3 biases
    assert count_parameters(SRCNN(num_channels=3)) == 15_552 + 51_200 + 2_400 + 99 == 69_251


def test_fsrcnn_parameters_match_the_paper() -> None:
    # FSRCNN (ECCV 2016, Sec. 3.3): 25d + sd + 9ms^2 + ds + 81d = 9ms^2 + 2sd + 106d weights
    d, s, m = 56, 12, 4
    weights = 9 * m * s**2 + 2 * s * d + 106 * d
    assert weights == 12_464  # the paper's count for FSRCNN(56, 12, 4)
    model = FSRCNN(num_features=d, num_shrunk_features=s, num_mapping_layers=m)
    assert count_weights(model) == weights
    biases = d + s + m * s + d + 1  # one per filter, the deconvolution's single filter included
    prelu_slopes = d + s + m * s + d  # one per channel after every layer but the deconvolution
    assert count_parameters(model) == weights + biases + prelu_slopes == 12_809
    # FSRCNN-s, the paper's small model: FSRCNN(32, 5, 1) has 3,937 weights
    fsrcnn_s = FSRCNN(num_features=32, num_shrunk_features=5, num_mapping_layers=1)
    assert count_weights(fsrcnn_s) == 9 * 1 * 5**2 + 2 * 5 * 32 + 106 * 32 == 3_937


def test_fsrcnn_parameters_do_not_depend_on_scale() -> None:
    # only the deconvolution's stride changes with the scale, not its weights
    assert len({count_parameters(FSRCNN(scale=scale)) for scale in SCALES}) == 1


def test_espcn_parameters() -> None:
    # 5^2 * c * 64 + 3^2 * 64 * 32 + 3^2 * 32 * c * r^2 weights, + 64 + 32 + c * r^2 biases
    c, r = 1, 3
    expected = 25 * c * 64 + 64 + 9 * 64 * 32 + 32 + 9 * 32 * c * r**2 + c * r**2
    assert expected == 22_729
    assert count_parameters(ESPCN(scale=r, num_channels=c)) == expected


def test_vdsr_parameters() -> None:
    # first 3x3 c->64, 18 layers 3x3 64->64, last 3x3 64->c, each with biases: 665,921, quoted as about 0.67 M
    c, features = 1, 64
    expected = (9 * c * features + features) + 18 * (9 * features * features + features) + (9 * features * c + c)
    assert expected == 665_921
    assert count_parameters(VDSR()) == expected


def test_count_parameters_counts_a_linear_layer() -> None:
    assert count_parameters(nn.Linear(3, 2)) == 3 * 2 + 2


@pytest.mark.parametrize("name", list(SR_MODELS))
def test_default_models_run(name: str) -> None:
    # the papers' full-size defaults, once each, on a small image
    model = build_model(name)
    size = 12 if model.upsampling == "pre" else 4
    with torch.no_grad():
        output = model(torch.rand(1, 1, size, size))
    side = 12 if model.upsampling == "pre" else 4 * model.scale  # pre: same size; post: the default scale (3, or 4)
    assert output.shape == (1, 1, side, side)


def test_espcn_global_residual_starts_from_matlab_bicubic_and_learns() -> None:
    from sr_teach.interpolation import resize

    torch.manual_seed(0)
    model = ESPCN(scale=3, global_residual=True)
    lr_image = torch.rand(2, 1, 9, 11)
    with torch.no_grad():
        model.sub_pixel_convolution.weight.zero_()
    # with no residual, the output is exactly the bicubic baseline it competes against
    assert torch.allclose(model(lr_image), resize(lr_image, scale=3, clamp=False), atol=1e-6)
    model(lr_image).sum().backward()
    assert model.sub_pixel_convolution.weight.grad.abs().sum() > 0
    assert ESPCN(**asdict(model.config)).config.global_residual is True


@pytest.mark.parametrize("name, options", [("srcnn", {"residual": True}), ("fsrcnn", {"global_residual": True})])
def test_residual_options_start_near_bicubic(name: str, options: dict) -> None:
    torch.manual_seed(0)
    lr_image = torch.rand(1, 1, 12, 12)
    bicubic = resize(lr_image, scale=3, clamp=False)
    model = build_model(name, scale=3, **options)
    output = model(bicubic if model.upsampling == "pre" else lr_image)
    plain = build_model(name, scale=3)(bicubic if model.upsampling == "pre" else lr_image)
    # the skip makes the untrained network (almost) bicubic; without it, the output is far from it
    assert (output - bicubic).abs().mean() < 0.02
    assert (plain - bicubic).abs().mean() > 0.05
