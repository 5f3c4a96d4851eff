"""sr_teach.export against its references: the models' readable forwards, MATLAB's bicubic (`resize`),
the two-step colour conversion, and F.pixel_shuffle / nn.ConvTranspose2d; ONNX Runtime within 1e-4.

Also `upscale` with the fast variants (whole and tiled) and `sr-teach export --onnx`'s bad inputs.
"""

from __future__ import annotations

import builtins
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.cli import main
from sr_teach.export import (
    ColumnPairConvolution, OnnxRuntimeModel, SubPixelNetwork, as_phases, colours_from_luma, export_onnx, fast_model,
    onnx_bytes, sub_pixel_convolution,
)
from sr_teach.images import load_image, rgb_to_ycbcr, to_tensor, ycbcr_to_rgb
from sr_teach.inference import receptive_field_radius, upscale
from sr_teach.interpolation import resize
from sr_teach.models import ESPCN, FSRCNN, SRCNN
from sr_teach.pretrained import load_pretrained

SCALES = [2, 3, 4]


def perturbed(model: nn.Module, seed: int = 0) -> nn.Module:
    """`model` in eval mode with every weight nudged: FSRCNN's last layer starts near zero, and a residual
    model near bicubic, which would let a wrong rewrite of them pass unseen."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def reference_models() -> list[tuple[str, nn.Module]]:
    """ESPCN and FSRCNN as the papers build them, in RGB, with a global residual, and as shipped."""
    models = []
    for scale in SCALES:
        models += [(f"espcn x{scale}", perturbed(ESPCN(scale=scale))),
                   (f"espcn relu residual rgb x{scale}", perturbed(ESPCN(scale=scale, activation="relu",
                                                                          global_residual=True, num_channels=3))),
                   (f"fsrcnn x{scale}", perturbed(FSRCNN(scale=scale))),
                   (f"fsrcnn residual x{scale}", perturbed(FSRCNN(scale=scale, global_residual=True)))]
    return models + [(f"shipped {name} x3", load_pretrained(name, 3)) for name in ("espcn", "fsrcnn")]


MODELS = reference_models()
IDS = [name for name, _ in MODELS]


def forward(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    """|actual - expected| <= tolerance, relative to the output's size where it exceeds 1 (a perturbed network
    makes values up to about 3, and float32 sums of a thousand products differ in their last bits)."""
    difference = (actual - expected).abs().max().item()
    assert difference <= tolerance * max(1.0, expected.abs().max().item()), f"differs by {difference:.2g}"


# --- the pieces -------------------------------------------------------------------------------------


def test_as_phases_reads_the_image_as_pixel_shuffle_wrote_it() -> None:
    phases = torch.rand(2, 27, 5, 7)
    image = F.pixel_shuffle(phases, 3)  # (2, 3, 15, 21)
    assert torch.equal(as_phases(image, 3), phases.unflatten(1, (3, 3, 3)))


@pytest.mark.parametrize("kernel, stride, padding, output_padding", [(9, 2, 4, 1), (9, 3, 3, 0), (9, 4, 3, 1),
                                                                     (4, 2, 1, 0), (3, 3, 0, 0)])
def test_sub_pixel_convolution_is_the_transposed_convolution(kernel, stride, padding, output_padding) -> None:
    layer = nn.ConvTranspose2d(5, 2, kernel_size=kernel, stride=stride, padding=padding, output_padding=output_padding)
    features = torch.rand(3, 5, 11, 8)
    rewritten = F.pixel_shuffle(forward(sub_pixel_convolution(layer), features), stride)
    assert_close(rewritten, forward(layer, features), 1e-5)


def test_sub_pixel_convolution_refuses_what_it_cannot_rewrite() -> None:
    with pytest.raises(ValueError, match="stride x stride"):
        sub_pixel_convolution(nn.ConvTranspose2d(4, 1, kernel_size=5, stride=2, padding=0))  # 2H + 3 pixels out
    with pytest.raises(ValueError, match="ESPCN or an FSRCNN"):
        SubPixelNetwork(SRCNN())


# --- the fast variants equal the readable forwards ----------------------------------------------------


@pytest.mark.parametrize("name, model", MODELS, ids=IDS)
def test_sub_pixel_network_equals_the_reference(name: str, model: nn.Module) -> None:
    images = torch.rand(2, model.num_channels, 13, 19)
    expected = forward(model, images)
    assert_close(forward(SubPixelNetwork(model), images), expected, 1e-5)
    channels_last = images.contiguous(memory_format=torch.channels_last)  # as inference.run_model gives it
    assert_close(forward(fast_model(model, "torch"), channels_last), expected, 1e-5)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_column_pairs_give_the_plain_convolution(size: int) -> None:
    convolution = nn.Conv2d(6, 4, kernel_size=size, padding=size // 2)
    pairs = ColumnPairConvolution(convolution)
    for width in (16, 2, 15):  # an odd width runs the plain convolution
        features = torch.rand(2, 6, 9, width).contiguous(memory_format=torch.channels_last)
        output = forward(pairs, features)
        assert_close(output, forward(convolution, features), 1e-5)
        assert output.is_contiguous(memory_format=torch.channels_last)
    assert_close(forward(pairs, features.contiguous()), forward(convolution, features), 1e-5)  # NCHW: plain


def test_fast_fsrcnn_at_x2_folds_its_sub_pixel_layer() -> None:
    model = perturbed(FSRCNN(scale=2))
    network = fast_model(model, "torch")
    assert isinstance(network.sub_pixel, ColumnPairConvolution)
    images = torch.rand(1, 1, 21, 32).contiguous(memory_format=torch.channels_last)
    assert_close(forward(network, images), forward(model, images), 1e-5)


@pytest.mark.parametrize("name, model", MODELS, ids=IDS)
def test_bands_of_rows_give_the_whole_image(name: str, model: nn.Module) -> None:
    network, images = SubPixelNetwork(model), torch.rand(2, model.num_channels, 29, 11)
    network.band_bytes = None
    whole = forward(network, images)
    network.band_bytes = 2 * 11 * network.widest * 4 * 5  # bands of 5 rows: 6 of them, the last of 4
    assert_close(forward(network, images), whole, 1e-5)  # float rounding only: each band sees its context
    network.band_bytes = 1  # one row at a time
    assert_close(forward(network, images), whole, 1e-5)


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="torch.compile needs a C++ compiler")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inductor's own use of torch.jit
def test_the_compiled_variant_equals_the_reference() -> None:
    model = load_pretrained("espcn", 3)
    images = torch.rand(1, 1, 24, 32)
    assert (forward(fast_model(model, "compile"), images) - forward(model, images)).abs().max() < 1e-5


def test_upscale_with_a_fast_model_equals_upscale_with_the_model_whole_and_in_tiles() -> None:
    model = load_pretrained("fsrcnn", 3)
    network = fast_model(model, "torch")
    assert network.receptive_field_radius == receptive_field_radius(model)
    image = torch.rand(3, 41, 57)
    expected = upscale(model, image)
    assert (upscale(network, image) - expected).abs().max() < 1e-5
    assert (upscale(network, image, tile_size=16) - expected).abs().max() < 1e-5


# --- the colour path --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, *SCALES])
def test_colours_from_luma_is_the_two_step_conversion(scale: int) -> None:
    photo, _ = to_tensor(load_image(Path(__file__).parent.parent / "data" / "astronaut.png"))  # (1, 3, H, W)
    # A photo, and colour noise within [0.2, 0.8], where bicubic cannot take Cb or Cr past [0, 1] (saturated colour
    # noise can: the two-step way clamps them there, this does not, so the two differ by up to 0.004 on it).
    for rgb in (photo[..., :40, :60], 0.2 + 0.6 * torch.rand(2, 3, 21, 34)):
        ycbcr = rgb_to_ycbcr(rgb)
        luma = resize(ycbcr[:, :1], scale=scale)  # a stand-in for the network's Y
        two_steps = ycbcr_to_rgb(torch.cat([luma, resize(ycbcr[:, 1:], scale=scale)], dim=1)).clamp(0, 1)
        assert (colours_from_luma(luma, ycbcr[:, 1:], scale) - two_steps).abs().max() < 1e-6
        # Y as the phases a sub-pixel network makes before its shuffle: the same numbers, read in place
        assert torch.equal(colours_from_luma(F.pixel_unshuffle(luma, scale), ycbcr[:, 1:], scale),
                           colours_from_luma(luma, ycbcr[:, 1:], scale))


def test_upscale_is_the_network_on_y_and_bicubic_cb_cr_as_before() -> None:
    """upscale's colour path against the two steps it replaces, with a shipped model on a photo."""
    model = load_pretrained("espcn", 3)
    photo, _ = to_tensor(load_image(Path(__file__).parent.parent / "data" / "astronaut.png"))
    rgb = photo[..., 100:160, 120:200]  # (1, 3, 60, 80)
    ycbcr = rgb_to_ycbcr(rgb)
    luma = forward(model, ycbcr[:, :1]).clamp(0, 1)
    two_steps = ycbcr_to_rgb(torch.cat([luma, resize(ycbcr[:, 1:], scale=3)], dim=1)).clamp(0, 1)
    assert (upscale(model, rgb) - two_steps).abs().max() < 1e-5


# --- ONNX -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnxruntime():
    return pytest.importorskip("onnxruntime")


ONNX_CASES = ["espcn x3", "espcn relu residual rgb x3", "fsrcnn residual x3", "shipped espcn x3", "shipped fsrcnn x3"]


@pytest.mark.parametrize("name, model", [case for case in MODELS if case[0] in ONNX_CASES], ids=ONNX_CASES)
def test_onnx_runtime_equals_the_reference(onnxruntime, name: str, model: nn.Module) -> None:
    runtime = OnnxRuntimeModel(onnx_bytes(model))
    for shape in [(1, model.num_channels, 16, 16), (2, model.num_channels, 23, 31)]:  # any batch and size
        images = torch.rand(shape)
        assert_close(forward(runtime, images), forward(model, images), 1e-4)
    assert (runtime.scale, runtime.upsampling, runtime.num_channels) == (model.scale, "post", model.num_channels)
    assert runtime.receptive_field_radius == receptive_field_radius(model)


def test_the_readable_graph_exports_too(onnxruntime) -> None:
    model = perturbed(FSRCNN(scale=2))  # with its transposed convolution
    images = torch.rand(1, 1, 15, 18)
    runtime = OnnxRuntimeModel(onnx_bytes(model, sub_pixel=False))
    assert_close(forward(runtime, images), forward(model, images), 1e-4)
    assert runtime.phases(images) is None  # it ends in the transposed convolution, not in a pixel shuffle
    colour = torch.rand(3, 15, 18)
    assert (upscale(runtime, colour) - upscale(model, colour)).abs().max() < 1e-4  # so upscale takes its output


def test_an_image_too_small_for_onnx_runtime_gets_a_value_error(onnxruntime, capfd) -> None:
    runtime = OnnxRuntimeModel(onnx_bytes(load_pretrained("espcn", 3)))
    for image in (torch.rand(3, 1, 1), torch.rand(1, 1, 1)):  # the colour path (phases) and the gray one
        with pytest.raises(ValueError, match="could not run the model on a 1 x 1 image"):
            upscale(runtime, image)
    assert capfd.readouterr().err == ""  # no log lines of ONNX Runtime's own besides


def test_onnx_phases_are_the_output_before_the_final_shuffle(onnxruntime) -> None:
    model = load_pretrained("espcn", 3)
    runtime = OnnxRuntimeModel(onnx_bytes(model))
    images = torch.rand(2, 1, 13, 21)
    phases = runtime.phases(images)
    assert phases.shape == (2, 9, 13, 21)
    assert_close(F.pixel_shuffle(phases, 3), forward(runtime, images), 1e-6)
    colour = torch.rand(3, 13, 21)  # upscale's colour pass reads the phases: the same image as the whole output's
    assert (upscale(runtime, colour) - upscale(model, colour)).abs().max() < 1e-4


def test_fast_model_runs_espcn_in_onnx_runtime_where_it_is_installed(onnxruntime) -> None:
    model = load_pretrained("espcn", 3)
    network = fast_model(model)
    images = torch.rand(1, 1, 19, 27)
    assert isinstance(network, OnnxRuntimeModel)
    assert_close(forward(network, images), forward(model, images), 1e-4)
    assert isinstance(fast_model(load_pretrained("fsrcnn", 3)), SubPixelNetwork)  # its PReLUs run faster in PyTorch
    with pytest.raises(ValueError, match="unknown backend"):
        fast_model(model, "tensorrt")


def test_a_graph_fixed_to_one_size_is_refused(onnxruntime) -> None:
    """The shipped ESPCN's readable forward calls MATLAB's resize, whose traced sizes would fix the file's."""
    with pytest.raises(ValueError, match="any size"):
        onnx_bytes(load_pretrained("espcn", 3), sub_pixel=False)


def test_export_onnx_writes_a_file_upscale_runs(onnxruntime, tmp_path) -> None:
    model = load_pretrained("espcn", 3)
    path = tmp_path / "espcn_x3.onnx"
    assert export_onnx(model, path) < 1e-4
    image = torch.rand(3, 30, 41)
    assert (upscale(OnnxRuntimeModel(path), image) - upscale(model, image)).abs().max() < 1e-4
    with pytest.raises(FileExistsError):
        export_onnx(model, path)
    assert [file.name for file in tmp_path.iterdir()] == ["espcn_x3.onnx"]  # no partial file left


# --- sr-teach export --------------------------------------------------------------------------------


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    status = main(["export", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1, err
    assert "Traceback" not in err and all(fragment in lines[0] for fragment in fragments), lines[0]


def test_the_command_exports_a_shipped_model(onnxruntime, capsys, tmp_path) -> None:
    output = tmp_path / "fsrcnn_x4.onnx"
    status, out, err = run(capsys, "--onnx", "fsrcnn_x4", str(output))
    assert status == 0, err
    assert "wrote" in out and OnnxRuntimeModel(output).scale == 4


def test_the_command_refuses_bad_input(onnxruntime, capsys, tmp_path) -> None:
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"precious")
    status, _, err = run(capsys, "--onnx", "espcn_x3", str(taken))
    assert_one_line_error(status, err, "exists", "--force")
    assert taken.read_bytes() == b"precious"
    status, _, err = run(capsys, "--onnx", "espcnn", str(tmp_path / "out.onnx"))
    assert_one_line_error(status, err, "espcnn", "espcn_x3")
    status, _, err = run(capsys, "--onnx", "espcn", str(tmp_path / "out.onnx"))
    assert_one_line_error(status, err, "--scale")
    status, _, err = run(capsys, "--onnx", "espcn_x3", str(tmp_path / "out.png"))
    assert_one_line_error(status, err, ".onnx")
    status, _, err = run(capsys, "--onnx", str(tmp_path / "missing.pt"), str(tmp_path / "out.onnx"))
    assert_one_line_error(status, err, "missing.pt")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken.onnx"]


def test_the_command_says_what_to_install(capsys, tmp_path, monkeypatch) -> None:
    real_import = builtins.__import__

    def without_onnxruntime(name, *arguments, **options):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'", name="onnxruntime")
        return real_import(name, *arguments, **options)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    status, _, err = run(capsys, "--onnx", "espcn_x3", str(tmp_path / "out.onnx"))
    assert_one_line_error(status, err, "pip install 'sr_teach[export]'", "onnxruntime")
    assert not (tmp_path / "out.onnx").exists()


def test_exporting_leaves_the_model_as_it_was(onnxruntime) -> None:
    """The exporter traces a copy: the model keeps its mode, its weights and their channels-last memory."""
    model = ESPCN(scale=3).train().to(memory_format=torch.channels_last)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    onnx_bytes(model, sub_pixel=False)
    assert model.training and all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert model.feature_extraction[0].weight.is_contiguous(memory_format=torch.channels_last)
