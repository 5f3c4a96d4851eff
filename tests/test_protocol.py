"""The protocol explorer: its numbers against direct computation and the published tables; its view."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sr_teach.datasets import BUNDLED, benchmark_images
from sr_teach.degradations import downscale
from sr_teach.evaluation import PUBLISHED_BICUBIC
from sr_teach.images import load_sample, quantize
from sr_teach.interpolation import resize
from sr_teach.metrics import psnr, ssim
from sr_teach.widgets.protocol import (
    CHOICES,
    STANDARD,
    Protocol,
    ProtocolExplorer,
    choice_label,
    equal_psnr_distortions,
    score,
    signed,
)


@pytest.fixture
def data_dir(tmp_path: Path, tiny_images: dict[str, Path]) -> Path:
    """A data directory whose "Set5" holds the tiny synthetic images (two colour, one gray), no LR files."""
    folder = tmp_path / "data" / "Set5" / "HR"
    folder.mkdir(parents=True)
    for name, path in tiny_images.items():
        (folder / f"{name}.png").write_bytes(path.read_bytes())
    return tmp_path / "data"


@pytest.fixture
def explorer(data_dir: Path) -> ProtocolExplorer:
    return ProtocolExplorer("Set5", scale=4, data_dir=data_dir)


def test_standard_protocol_matches_a_direct_computation(explorer: ProtocolExplorer, data_dir: Path) -> None:
    expected = []
    for image in benchmark_images("Set5", 4, data_dir=data_dir):
        lr_image = quantize(downscale(image.hr_image, 4))  # LR stored in 8 bits, as the benchmark files
        sr_image = resize(lr_image, scale=4)
        expected.append(float(psnr(sr_image[None], image.hr_image[None], crop_border=4, y_channel=True,
                                   round_to_8bit=True)))
    measurement = explorer.measure(with_ssim=False)
    assert [result.name for result in measurement.images] == ["colour", "gray", "odd"]
    assert measurement.psnr == pytest.approx(sum(expected) / 3, abs=1e-6)
    assert explorer.datasets() == [BUNDLED, "Set5"]


def test_each_choice_changes_what_it_should(explorer: ProtocolExplorer) -> None:
    images = explorer.images()
    hr_gray, sr_gray = images[1].hr_image, explorer.sr_images("bicubic")[1]
    assert hr_gray.shape[0] == 1
    # Gray measured as the Y of gray RGB: every error scaled by 219/255, so exactly +20 log10(255/219) dB
    # when nothing is rounded.
    as_gray = score(sr_gray, hr_gray, 4, Protocol(rounding="none"))
    as_rgb = score(sr_gray, hr_gray, 4, Protocol(rounding="none", gray_as_gray=False))
    assert as_rgb - as_gray == pytest.approx(20 * math.log10(255 / 219), abs=1e-4)
    # RGB instead of Y on a colour image: the same numbers as metrics.psnr without y_channel.
    hr_colour, sr_colour = images[0].hr_image, explorer.sr_images("bicubic")[0]
    assert score(sr_colour, hr_colour, 4, Protocol(y_channel=False)) == pytest.approx(
        float(psnr(sr_colour[None], hr_colour[None], crop_border=4, round_to_8bit=True)), abs=1e-6
    )
    # No border crop: the whole image.
    assert score(sr_colour, hr_colour, 4, Protocol(crop_border=False)) == pytest.approx(
        float(psnr(sr_colour[None], hr_colour[None], y_channel=True, round_to_8bit=True)), abs=1e-6
    )
    # SSIM through the same path.
    assert score(sr_colour, hr_colour, 4, STANDARD, metric=ssim) == pytest.approx(
        float(ssim(sr_colour[None], hr_colour[None], crop_border=4, y_channel=True, round_to_8bit=True)),
        abs=1e-6,
    )


def test_deltas_list_every_alternative_once(explorer: ProtocolExplorer) -> None:
    explorer.reset()
    rows = explorer.deltas()
    alternatives = sum(len(options) - 1 for options in CHOICES.values())
    assert len(rows) == alternatives + 2
    assert rows[0].label == "standard protocol" and rows[0].delta == 0.0
    assert rows[-1].label == "your protocol" and rows[-1].delta == pytest.approx(0.0)
    for row in rows[1:-1]:
        assert row.delta == pytest.approx(row.psnr - rows[0].psnr)
        assert math.isfinite(row.psnr)
    by_label = {row.label: row for row in rows}
    # One of the three images is gray: a third of its +1.32 dB shows in the mean (8-bit rounding
    # blurs the exact value a little).
    assert by_label["gray images: as gray RGB"].delta == pytest.approx(20 * math.log10(255 / 219) / 3, abs=0.05)


def test_kernel_deltas_on_a_photo() -> None:
    """On a real photo at x4: LR made without antialiasing alias; Pillow's bicubic is almost MATLAB's."""
    rows = {row.label: row for row in ProtocolExplorer(BUNDLED, scale=4, max_images=1).deltas()}
    assert rows["LR made by: torch bicubic"].delta < -0.3
    assert abs(rows["LR made by: Pillow bicubic"].delta) < 0.05


def test_set_changes_state_and_rejects_nonsense(explorer: ProtocolExplorer) -> None:
    explorer.set(y_channel=False, lr_kernel="torch_area")
    assert explorer.protocol == Protocol(y_channel=False, lr_kernel="torch_area")
    assert explorer.deltas()[-1].delta != 0
    assert "measured on RGB" in explorer.describe()
    explorer.reset()
    assert explorer.protocol == STANDARD
    with pytest.raises(ValueError, match="not a choice"):
        explorer.set(rounding="sometimes")
    with pytest.raises(ValueError, match="unknown setting"):
        explorer.set(colour="blue")
    with pytest.raises(ValueError, match="scale"):
        explorer.set(scale=5)
    with pytest.raises(ValueError, match="not available"):
        explorer.set(dataset="NoSuchSet")
    assert explorer.protocol == STANDARD and explorer.scale == 4


def test_delta_table_text(explorer: ProtocolExplorer) -> None:
    explorer.reset()
    text = explorer.delta_table()
    assert text.splitlines()[0] == "bicubic on Set5 x4, 3 images"
    assert "measured on: RGB" in text and "your protocol" in text
    assert "-0.00" not in text


def test_signed_never_prints_negative_zero() -> None:
    assert signed(-0.001) == "+0.00"
    assert signed(0.456) == "+0.46"
    assert signed(-1.234) == "-1.23"


def test_choice_label() -> None:
    assert choice_label("y_channel", False) == "RGB"
    assert choice_label("lr_kernel", "bicubic") == "MATLAB bicubic"


@pytest.mark.needs_datasets("Set5")
def test_standard_protocol_on_set5_reproduces_the_published_bicubic(datasets_dir) -> None:
    explorer = ProtocolExplorer("Set5", scale=4, data_dir=datasets_dir)
    assert "Set5" in explorer.datasets()
    measurement = explorer.measure()
    published_psnr, published_ssim = PUBLISHED_BICUBIC[("Set5", 4)]
    assert measurement.psnr == pytest.approx(published_psnr, abs=0.02)
    assert measurement.ssim == pytest.approx(published_ssim, abs=0.001)


def test_equal_psnr_distortions_have_equal_psnr_and_different_ssim() -> None:
    image = load_sample("camera")[:, :256, :256]
    distortions = equal_psnr_distortions(image, target_psnr=26.0)
    assert set(distortions) == {"brightness shift", "Gaussian blur", "Gaussian noise"}
    scores = {}
    for name, (parameter, distorted) in distortions.items():
        assert parameter > 0 and distorted.shape == image.shape
        assert float(psnr(distorted[None], image[None])[0]) == pytest.approx(26.0, abs=0.01)
        scores[name] = float(ssim(distorted[None], image[None])[0])
    assert scores["brightness shift"] > scores["Gaussian blur"] + 0.05 > scores["Gaussian noise"] + 0.1


@pytest.mark.parametrize("target_psnr", [20.0, 32.0])
def test_equal_psnr_distortions_reach_the_targets_lesson_02_suggests(target_psnr) -> None:
    image = load_sample("camera")[:, :256, :256]
    for _, distorted in equal_psnr_distortions(image, target_psnr=target_psnr).values():
        assert float(psnr(distorted[None], image[None])[0]) == pytest.approx(target_psnr, abs=0.01)


def test_an_unreachable_psnr_is_refused_with_the_reachable_range() -> None:
    with pytest.raises(ValueError, match=r"cannot reach 5.0 dB: over its range \(0.01 to 16\)"):
        equal_psnr_distortions(load_sample("camera")[:, :256, :256], target_psnr=5.0)


# --- the view: set widget values, click, and check the state and the HTML ---


@pytest.fixture
def view(explorer: ProtocolExplorer):
    pytest.importorskip("ipywidgets")
    from sr_teach.widgets.protocol import ProtocolExplorerView

    return ProtocolExplorerView(explorer)


def test_view_shows_the_standard_protocol_first(view) -> None:
    assert "standard protocol" in view.result.value
    assert "your protocol" in view.table.value
    assert "gray" in view.per_image.value
    assert view.dataset.options == (BUNDLED, "Set5") and view.dataset.value == "Set5"
    assert view.status.value == ""
    assert view.choices["y_channel"].value is True


def test_view_dropdowns_drive_the_explorer(view) -> None:
    standard = view.explorer.measure(STANDARD, with_ssim=False).psnr
    view.choices["y_channel"].value = False
    assert view.explorer.protocol.y_channel is False
    rgb = view.explorer.measure(with_ssim=False).psnr
    assert rgb != standard
    assert f"{rgb:.2f} dB" in view.result.value
    assert "measured on: RGB ◀" in view.table.value
    view.choices["lr_kernel"].value = "torch_bilinear"
    assert view.explorer.protocol == Protocol(y_channel=False, lr_kernel="torch_bilinear")
    view.scale.value = 2
    assert view.explorer.scale == 2 and "x2" in view.result.value
    view.method.value = "bilinear"
    assert view.explorer.method == "bilinear" and "bilinear on Set5" in view.result.value


def test_view_reset_button_restores_the_standard(view) -> None:
    view.choices["crop_border"].value = False
    view.choices["rounding"].value = "none"
    assert view.explorer.protocol != STANDARD
    view.reset_button.click()
    assert view.explorer.protocol == STANDARD
    assert all(control.value == getattr(STANDARD, name) for name, control in view.choices.items())
    assert "◀" not in view.table.value
    assert "(<b>+0.00 dB</b>)" in view.result.value


def test_view_reports_errors_instead_of_raising(view, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise OSError("the data directory went away")

    monkeypatch.setattr(view.explorer, "deltas", broken)
    view.refresh()
    assert "the data directory went away" in view.status.value
