"""The comparison widgets (regions, zoom, swipe, lesson 07's before-and-after), driven like a learner
would: state classes and their views, without a browser, on the CPU."""

from __future__ import annotations

import datetime
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_teach.degradations import downscale, mod_crop
from sr_teach.evaluation import model_upscaler
from sr_teach.interpolation import resize
from sr_teach.metrics import psnr
from sr_teach.models import ESPCN
from sr_teach.widgets.before_after import BeforeAfter, BeforeAfterView
from sr_teach.widgets.pictures import MARK_COLOUR, encode_image, mark_region
from sr_teach.widgets.regions import Region, busiest_regions
from sr_teach.widgets.swipe import SwipeComparison, SwipeView, plot_swipe
from sr_teach.widgets.zoom import ZoomComparison, ZoomView, plot_zoom

pytest.importorskip("ipywidgets")  # the views need it; the state classes do not


def textured_image(height: int = 64, width: int = 72, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth gradients plus a seeded texture: something for the methods to disagree about."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, height)[:, None]
    columns = torch.linspace(0, 1, width)[None, :]
    planes = [0.3 + 0.3 * rows * columns + 0.15 * torch.sin(columns * 20 + c) * torch.cos(rows * 13)
              for c in range(channels)]
    image = torch.stack(planes) + 0.05 * torch.rand(channels, height, width, generator=generator)
    return image.clamp(0, 1)


def png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def uploaded(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload.value holds after the browser sends one file."""
    return ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


# ------------------------------------------------------------------------------------- regions


def test_region_clamps_into_the_image_and_crops():
    region = Region(top=50, left=-5, size=20).clamped(height=60, width=40)
    assert region == Region(top=40, left=0, size=20)
    assert Region(0, 0, 100).clamped(30, 50).size == 30
    image = torch.arange(60 * 40, dtype=torch.float32).reshape(1, 60, 40)
    assert torch.equal(region.crop(image), image[:, 40:60, 0:20])
    assert Region(2, 3, 4).scaled(3) == Region(6, 9, 12)


def test_busiest_regions_find_the_texture_in_a_flat_image():
    image = torch.full((1, 64, 64), 0.5)
    image[:, 32:48, 8:24] = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1))
    regions = busiest_regions(image, size=16, count=2)
    assert regions[0] == Region(32, 8, 16)
    assert len(regions) == 2
    first, second = regions
    assert abs(first.top - second.top) >= 16 or abs(first.left - second.left) >= 16  # no overlap


def test_mark_region_draws_a_yellow_box_on_a_thumbnail():
    marked = mark_region(torch.zeros(1, 400, 200), Region(100, 50, 80), max_side=200)
    assert marked.shape == (3, 200, 100)
    yellow = torch.tensor(MARK_COLOUR) / 255
    assert torch.allclose(marked[:, 50, 30], yellow, atol=1 / 255)  # top edge of the box, halved
    assert marked[:, 70, 45].abs().sum() == 0  # inside stays black


def test_encode_image_writes_png_or_jpeg_blown_up_to_a_size():
    image = textured_image(8, 8)
    png = encode_image(image)
    assert png.startswith(b"\x89PNG") and encode_image(image, "jpeg").startswith(b"\xff\xd8")
    enlarged = Image.open(io.BytesIO(encode_image(image, size=32)))
    assert enlarged.size == (32, 32)
    blocks = torch.from_numpy(np.array(enlarged))  # (32, 32, 3)
    assert torch.equal(blocks[:4, :4], blocks[:1, :1].expand(4, 4, 3))  # each pixel a 4 x 4 block
    with pytest.raises(ValueError, match="image_format"):
        encode_image(image, "gif")


# ------------------------------------------------------------------------------ zoom comparison


def test_zoom_comparison_matches_the_library_pieces():
    image = textured_image()
    comparison = ZoomComparison(image, scales=(2, 4))
    for scale in (2, 4):
        hr_image = mod_crop(image, scale)
        lr_image = downscale(hr_image, scale)
        enlarged = comparison.enlarged(scale)
        assert list(enlarged) == ["nearest", "bilinear", "bicubic", "lanczos"]
        bicubic = resize(lr_image, scale=scale, method="bicubic")
        assert torch.equal(enlarged["bicubic"], bicubic)
        expected = float(psnr(bicubic, hr_image, crop_border=scale, y_channel=True, round_to_8bit=True))
        assert comparison.psnr(scale)["bicubic"] == pytest.approx(expected)
    scores = comparison.psnr(4)
    assert scores["nearest"] < scores["bilinear"] < scores["bicubic"]


def test_a_zoom_comparison_needs_one_image():
    with pytest.raises(ValueError, match="one \\(C, H, W\\) image"):
        ZoomComparison(torch.zeros(2, 3, 16, 16))


def test_nearest_enlargement_is_blocks_of_the_input_pixels():
    comparison = ZoomComparison(textured_image(), scales=(8,), scale=8)
    lr_image = comparison.low_resolution()
    blocks = lr_image.repeat_interleave(8, dim=-2).repeat_interleave(8, dim=-1)
    assert torch.equal(comparison.enlarged()["nearest"], blocks)


def test_zoom_comparison_crops_follow_scale_and_region():
    comparison = ZoomComparison(textured_image(), scales=(2, 4), region=Region(10, 12, 16))
    assert comparison.scale == 4
    crops = comparison.crops()
    assert list(crops) == ["original", "nearest", "bilinear", "bicubic", "lanczos"]
    assert all(crop.shape == (3, 16, 16) for crop in crops.values())
    assert torch.equal(crops["original"], comparison.image[:, 10:26, 12:28])
    comparison.set_region("centre")
    assert comparison.region == comparison.regions["centre"]
    with pytest.raises(ValueError, match="presets"):
        comparison.set_region("nowhere")
    with pytest.raises(ValueError, match="scales"):
        comparison.set_scale(3)
    table = comparison.table()
    assert "x2" in table and "x4" in table and "lanczos" in table


def test_zoom_comparison_of_a_low_resolution_input_has_no_psnr():
    small = textured_image(20, 24)
    comparison = ZoomComparison(small, scales=(2, 4), region=Region(4, 5, 8), image_is_low_resolution=True)
    assert not comparison.has_ground_truth
    assert comparison.enlarged()["bicubic"].shape == (3, 80, 96)
    assert comparison.psnr() == {}
    assert comparison.output_region() == Region(16, 20, 32)
    crops = comparison.crops()
    assert crops["input"].shape == (3, 8, 8) and crops["bicubic"].shape == (3, 32, 32)
    assert "no ground truth" in comparison.table()


def test_a_post_upsampling_model_joins_only_at_its_scale():
    torch.manual_seed(0)
    model = ESPCN(scale=2, num_channels=1, global_residual=True)
    comparison = ZoomComparison(textured_image(), methods=("bicubic",), upscalers={"ESPCN": model_upscaler(model)},
                                scales=(2, 4))
    assert set(comparison.enlarged(2)) == {"bicubic", "ESPCN"}
    assert set(comparison.enlarged(4)) == {"bicubic"}
    # With near-zero residual weights the network starts as (PyTorch's) bicubic: close in PSNR.
    scores = comparison.psnr(2)
    assert abs(scores["ESPCN"] - scores["bicubic"]) < 0.5
    assert comparison.table().splitlines()[-1].split()[-1] == "-"


def test_zoom_view_controls_drive_the_comparison():
    comparison = ZoomComparison(textured_image(), scales=(2, 4), regions={"corner": Region(0, 0, 16)})
    view = ZoomView(comparison, display_size=64)
    assert view.preset.value == "corner"
    assert set(view.images) == {"original", "nearest", "bilinear", "bicubic", "lanczos"}
    before_label = view.labels["bicubic"].value
    before_image = view.images["bicubic"].value

    view.scale.value = 2
    assert comparison.scale == 2
    assert view.labels["bicubic"].value != before_label
    assert f"{comparison.psnr(2)['bicubic']:.2f} dB" in view.labels["bicubic"].value
    assert view.images["bicubic"].value != before_image

    view.preset.value = "centre"
    assert comparison.region == comparison.regions["centre"]
    assert (view.top.value, view.left.value) == (comparison.region.top, comparison.region.left)

    overview = view.overview.value
    view.left.value = 1000  # beyond the edge: the region is clamped and the slider follows
    assert comparison.region.left == comparison.image.shape[-1] - comparison.region.size
    assert view.left.value == comparison.region.left
    assert view.preset.value is None  # no longer a preset
    assert view.overview.value != overview
    assert "Interactive" in view._repr_mimebundle_()["text/plain"]


def test_zoom_sliders_wait_for_release():
    view = ZoomView(ZoomComparison(textured_image(), scales=(2,)))
    assert not any(slider.continuous_update for slider in (view.left, view.top, view.size))


# ----------------------------------------------------------------------------- swipe comparison


def test_swipe_composite_takes_left_then_right_with_a_divider():
    left, right = torch.zeros(3, 10, 20), torch.ones(3, 10, 20)
    swipe = SwipeComparison(left, right, split=0.25, divider_width=2)
    assert swipe.split_column == 5
    composite = swipe.composite()
    assert composite.shape == (3, 10, 20)
    assert composite[:, :, :4].eq(0).all() and composite[:, :, 6:].eq(1).all()
    yellow = torch.tensor(MARK_COLOUR) / 255
    assert torch.allclose(composite[:, 3, 4], yellow) and torch.allclose(composite[:, 3, 5], yellow)
    swipe.set_split(7.0)  # clamped
    assert swipe.split == 1.0 and swipe.composite()[:, :, :18].eq(0).all()


def test_the_largest_gain_region_is_where_the_right_image_is_closer_to_the_reference():
    reference = textured_image(48, 48)
    left = reference + 0.1
    right = left.clone()
    right[:, 30:42, 6:18] = reference[:, 30:42, 6:18]  # perfect only here
    swipe = SwipeComparison(left, right, "bicubic", "net", reference=reference, region_size=12)
    assert list(swipe.regions)[0] == "largest gain of net"
    assert swipe.region == Region(30, 6, 12)


def test_swipe_of_gray_images_is_drawn_in_colour_and_crops_include_the_reference():
    gray = textured_image(40, 40, channels=1)
    swipe = SwipeComparison(gray, gray.flip(-1), "a", "b", reference=gray, region=Region(5, 6, 10))
    assert swipe.composite().shape == (3, 40, 40)
    crops = swipe.crops()
    assert list(crops) == ["a", "b", "original"]
    assert torch.equal(crops["original"], gray[:, 5:15, 6:16])
    with pytest.raises(ValueError, match="same shape"):
        SwipeComparison(gray, torch.zeros(1, 40, 41))
    with pytest.raises(ValueError, match="reference"):
        SwipeComparison(gray, gray, reference=torch.zeros(3, 40, 40))


def test_swipe_view_is_findable_and_redraws_on_the_slider():
    left, right = textured_image(32, 48), textured_image(32, 48, seed=1).flip(-1)
    swipe = SwipeComparison(left, right, reference=left)
    view = SwipeView(swipe, display_size=48, scores={"bicubic": 30.0})
    assert view.swipe.description == "Swipe"
    assert "sr-swipe-slider" in view.swipe._dom_classes
    assert "sr-swipe-image" in view.image._dom_classes
    assert view.image.value == encode_image(swipe.composite())

    before = view.image.value
    view.swipe.value = 0.1
    assert swipe.split == pytest.approx(0.1)
    assert view.image.value != before
    assert view.image.value == encode_image(swipe.composite())
    assert view.preset.value == "largest gain of model"

    crops_before = [tile.children[1].value for tile in view.crops.children]
    assert len(crops_before) == 3 and "30.00 dB" in view.crops.children[0].children[0].value
    other = next(name for name in swipe.regions if swipe.regions[name] != swipe.region)
    view.preset.value = other
    assert swipe.region == swipe.regions[other]
    assert [tile.children[1].value for tile in view.crops.children] != crops_before


def test_static_figures_draw_without_a_display():
    comparison = ZoomComparison(textured_image(), scales=(2, 4))
    figure = plot_zoom(comparison)
    assert len(figure.axes) == 1 + 2 * 5  # the overview, then 2 scales x (original + 4 methods)
    assert "dB" in figure.axes[2].get_title()
    swipe = SwipeComparison(comparison.enlarged(2)["bicubic"], comparison.enlarged(2)["lanczos"],
                            reference=comparison.ground_truth(2))
    figure = plot_swipe(swipe, scores=comparison.psnr(2))
    assert len(figure.axes) == 4


# ------------------------------------------------------------------------------ lesson 07 state


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Three small noisy photos: enough for an Experiment with a validation image.

    Noisy, because on very smooth images bicubic is nearly perfect, and the first Adam step of a
    residual network that starts as bicubic multiplies the tiny loss, which the trainer (rightly)
    calls exploding.
    """
    folder = tmp_path / "photos"
    folder.mkdir()
    generator = torch.Generator().manual_seed(5)
    for seed in range(3):
        image = textured_image(80, 96, seed=seed) + 0.3 * torch.rand(3, 80, 96, generator=generator)
        (folder / f"photo{seed}.png").write_bytes(png_bytes(image.clamp(0, 1)))
    return folder


def test_before_after_compares_bicubic_and_the_models_for_the_scale():
    torch.manual_seed(0)
    state = BeforeAfter(sample="camera", scale=2, max_output_side=128)
    state.add_model("ESPCN x2", ESPCN(scale=2, global_residual=True))
    state.add_model("ESPCN x4", ESPCN(scale=4, global_residual=True))
    assert state.models_for(2) == ["ESPCN x2"] and state.models_for(4) == ["ESPCN x4"]
    result = state.run()
    assert list(result.outputs) == ["bicubic", "ESPCN x2"]
    assert result.hr_image.shape == (1, 128, 128)  # camera is 512 x 512: cropped to the limit
    assert result.lr_image.shape == (1, 64, 64)
    assert "cropped" in state.message
    assert set(result.psnr) == {"bicubic", "ESPCN x2"}
    assert "+0.00" in result.table()
    swipe = state.swipe()
    assert swipe.right_label == "ESPCN x2" and swipe.reference is result.hr_image


def test_before_after_marks_photos_seen_in_training():
    state = BeforeAfter(sample="coins", scale=2, held_out=["rocket"], max_output_side=64)
    assert "(seen in training)" in state.run().picture
    state.choose_sample("rocket")
    assert "(held out)" in state.run().picture


def test_uploads_good_bad_and_too_small():
    state = BeforeAfter(sample="coins", scale=2, max_output_side=200)
    assert state.choose_upload(png_bytes(textured_image(40, 50)), "mine.png")
    result = state.run()
    assert result.picture == "mine.png" and result.hr_image.shape == (3, 40, 50)

    state.set_ground_truth(False)  # enlarge my photo as it is: no PSNR
    result = state.run()
    assert result.hr_image is None and result.psnr == {}
    assert result.outputs["bicubic"].shape == (3, 80, 100)
    assert "judge by eye" in result.table()
    state.max_output_side = 60  # an input is cropped so its enlargement fits: 30 pixels at x2
    assert state.run().lr_image.shape == (3, 30, 30) and "cropped" in state.message

    assert not state.choose_upload(b"certainly not a PNG", "notes.txt")
    assert "notes.txt" in state.message and "not an image" in state.message
    assert state.picture.name == "mine.png"  # the last good picture stays

    assert state.choose_upload(png_bytes(textured_image(20, 20)), "tiny.png")
    state.set_scale(4)
    assert state.run() is None
    assert "too small" in state.message
    with pytest.raises(ValueError, match="scale"):
        state.set_scale(5)


def test_training_here_adds_the_best_weights_to_the_comparison(photo_folder: Path):
    state = BeforeAfter(sample="coins", scale=2, max_output_side=64, training_data=(str(photo_folder),),
                        training_chunks=3)
    with pytest.raises(RuntimeError, match="no training run has ended"):
        state.finish_training()
    run = state.start_training(steps=6)
    run.run_blocking()
    trainer = run.experiment.trainer
    assert run.outcome == "finished" and trainer.step == 6
    assert trainer.history.validation_step == [0, 2, 4, 6]
    assert "step 6" in state.training_progress() and "validation PSNR" in state.training_progress()
    label = state.finish_training()
    assert label == "ESPCN x2 (trained here)" and state.models_for(2) == [label]
    best = trainer.best_state
    assert all(torch.equal(value, best[name]) for name, value in run.experiment.model.state_dict().items())
    assert state.held_out == {path.stem for path in run.experiment.validation_paths}
    assert label in state.run().outputs


def test_before_after_view_train_upload_and_scale(photo_folder: Path):
    state = BeforeAfter(sample="coins", scale=2, max_output_side=96, training_seconds=0.6,
                        training_data=(str(photo_folder),), training_chunks=3)
    view = BeforeAfterView(state)
    assert view.model.options == () and "no model for x2" in view.status.value
    assert "bicubic" in view.table.value and view.swipe_view is not None

    view.train_button.click()  # trains in a background thread
    assert state.training.wait(timeout=120)
    assert state.training.outcome == "finished"
    assert view.model.options == ("ESPCN x2 (trained here)",)
    assert view.model.value == "ESPCN x2 (trained here)"
    assert "finished at step" in view.status.value
    assert view.swipe_view.comparison.right_label == "ESPCN x2 (trained here)"
    assert "ESPCN x2 (trained here)" in view.table.value
    assert not view.train_button.disabled and view.stop_button.disabled

    view.scale.value = 3
    assert state.scale == 3 and view.model.options == ()
    assert view.train_button.description == "Train ESPCN x3"

    view.upload.value = uploaded("mine.png", png_bytes(textured_image(60, 60)))
    assert state.picture.name == "mine.png" and "mine.png" in view.table.value
    view.upload.value = uploaded("broken.png", b"\x89PNG but broken")
    assert "Could not use 'broken.png'" in view.status.value
    assert state.picture.name == "mine.png"

    view.use_as.value = False
    assert "judge by eye" in view.table.value
    view.picture.value = "camera"  # a bundled photo is always ground truth
    assert view.use_as.value is True and state.result.hr_image is not None


def test_a_train_click_that_cannot_train_says_why(tmp_path: Path):
    state = BeforeAfter(sample="coins", scale=2, max_output_side=64, training_data=(str(tmp_path / "nowhere"),))
    view = BeforeAfterView(state)
    view.train_button.click()
    assert state.training is None and "cannot train" in view.status.value
    assert not view.train_button.disabled


def test_the_stop_button_ends_a_background_run_and_keeps_its_model(photo_folder: Path):
    state = BeforeAfter(sample="coins", scale=2, max_output_side=64, training_seconds=600,
                        training_data=(str(photo_folder),), training_chunks=600)
    view = BeforeAfterView(state)
    view.train_button.click()
    run = state.training
    assert run.running and view.train_button.disabled and not view.stop_button.disabled  # the click returned
    view.train_button.click()  # a second click while training does nothing
    assert state.training is run
    deadline = time.monotonic() + 60
    while run.experiment.trainer.step < 2:
        assert time.monotonic() < deadline, "the background run did not train"
        time.sleep(0.01)
    assert "training ESPCN x2: step" in view.status.value
    view.stop_button.click()
    assert run.wait(timeout=120)
    assert run.outcome == "stopped" and "stopped at step" in view.status.value
    assert view.model.options == ("ESPCN x2 (trained here)",)
    assert not view.train_button.disabled and view.stop_button.disabled
