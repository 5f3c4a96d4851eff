"""The lessons in a real browser: JupyterLab on 127.0.0.1, driven in headless Chromium by Playwright.

nbval checks that the notebooks compute the right things; only a browser shows whether the widgets
render and respond. These tests run three lessons in fast mode and check that
- every widget rendered (no "Error displaying widget"),
- moving the swipe slider of lesson 07 changes the picture,
- pressing Run in the training panel of lesson 03 updates the live plot,
- no widget label or button of lessons 03, 05 and 07 is cut off, the swipe slider spans its picture,
  and the detail crops of lesson 07 sit in a row at one height with captions apart.

They need Debian's `chromium` and the `playwright` Python package (no browser download: Playwright
drives the system browser). Without them the tests are skipped, except in CI (CI=true), where a
missing piece is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(os.environ.get("SR_TEACH_NOTEBOOKS", ROOT / "notebooks"))  # the lessons to open
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "sr-teach-browser-test"
CELL_TIMEOUT_MS = 240_000  # fast mode runs a lesson in well under a minute; leave room for a busy CI


def missing_piece() -> str | None:
    if CHROMIUM is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    reason = missing_piece()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path_factory.mktemp("jupyter-home")
    environment = {
        **os.environ,
        "SR_TEACH_FAST": "1",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    # Work on copies, so running the lessons never touches the committed notebooks.
    work = tmp_path_factory.mktemp("notebooks")
    # Lay out every cell, not only those on screen (JupyterLab's default skips off-screen ones), so
    # the sizes the label check measures are real.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, work / notebook.name)
    log = open(home / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}", "--allow-root",
            "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True",
        ],
        env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(home / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                      "--disable-quic"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.base_url = base  # type: ignore[attr-defined]
            yield page
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def run_notebook(page, name: str) -> None:
    """Open a notebook in JupyterLab, run all its cells and wait until the kernel is idle."""
    page.goto(f"{page.base_url}/lab/tree/{name}?token={TOKEN}&reset")
    # A notebook without kernel metadata asks which kernel to start: accept the default (Python 3).
    try:
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
    except Exception:  # no dialog: the notebook names its kernel
        pass
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           timeout=120_000)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Every code cell's prompt turns from [*] to [n] when the whole notebook has run.
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
            const kernel = panel.sessionContext.session.kernel;
            return kernel.status === 'idle' && cells.length > 0 &&
                   cells.every(cell => cell.model.executionCount !== null);
        }""",
        timeout=CELL_TIMEOUT_MS, polling=1000,
    )


def assert_no_errors(page, name: str) -> None:
    text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    assert "Error displaying widget" not in text, f"{name}: a widget failed to render"
    errors = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [errors.nth(i).inner_text() for i in range(errors.count())]
    tracebacks = [text for text in tracebacks if "Traceback" in text or "Error" in text.split("\n")[0]]
    assert not tracebacks, f"{name}: a cell failed:\n{tracebacks[0][-2000:]}"


# The visible widget labels and buttons whose text does not fit their box (the browser then cuts
# it, with an ellipsis): their texts.
CUT_OFF_LABELS = """() => {
    const notebook = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    const labels = notebook.querySelectorAll('.jupyter-widgets .widget-label, .jupyter-widgets button');
    return Array.from(labels)
        .filter(label => label.offsetParent !== null && label.scrollWidth > label.clientWidth + 1)
        .map(label => `${label.textContent.trim() || label.title} (${label.scrollWidth} > ${label.clientWidth} px)`);
}"""


def assert_no_label_cut_off(page, name: str) -> None:
    cut_off = page.evaluate(CUT_OFF_LABELS)
    assert not cut_off, f"{name}: widget labels cut off: {cut_off}"


# For each row of captioned crops (class sr-tile-row): whether its crops sit at one height and its
# captions do not overlap.
TILE_ROWS = """() => Array.from(document.querySelectorAll('.sr-tile-row')).map(row => {
    const tiles = Array.from(row.children).filter(tile => tile.offsetParent !== null);
    const crops = tiles.map(tile => tile.querySelector('img').getBoundingClientRect());
    const captions = tiles.map(tile => tile.querySelector('.widget-html').getBoundingClientRect());
    return {
        aligned: crops.every(crop => Math.abs(crop.top - crops[0].top) <= 1),
        spaced: captions.every((caption, i) => i === 0 || captions[i - 1].right < caption.left),
        tiles: tiles.length,
    };
})"""


# The src of the <img> an ipywidgets.Image with this CSS class renders to (the class may sit on the
# <img> itself or on a wrapper).
IMAGE_SOURCE = """(cssClass) => {
    const element = document.querySelector('.' + cssClass);
    if (!element) return null;
    const image = element.tagName === 'IMG' ? element : element.querySelector('img');
    return image ? image.src : null;
}"""


def image_source(page, css_class: str) -> str | None:
    return page.evaluate(IMAGE_SOURCE, css_class)


def wait_for_new_image(page, css_class: str, before: str, timeout_ms: int) -> None:
    page.wait_for_function(
        f"([cssClass, before]) => {{ const source = ({IMAGE_SOURCE})(cssClass); return source && source !== before; }}",
        arg=[css_class, before], timeout=timeout_ms, polling=250,
    )


def run_lesson(page, name: str) -> None:
    """Run every cell of a lesson in the browser: no error output, and no widget label cut off."""
    run_notebook(page, name)
    assert_no_errors(page, name)
    assert_no_label_cut_off(page, name)


def test_swipe_slider_changes_the_picture(browser_page) -> None:
    page, name = browser_page, "07_before_and_after.ipynb"
    run_lesson(page, name)
    rows = page.evaluate(TILE_ROWS)
    assert rows and all(row["tiles"] > 1 for row in rows), f"{name}: no row of detail crops: {rows}"
    assert all(row["aligned"] and row["spaced"] for row in rows), f"{name}: detail crops misaligned: {rows}"
    slider = page.locator(".sr-swipe-slider").first
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed(timeout=60_000)
    before = image_source(page, "sr-swipe-image")
    assert before, "the swipe picture did not render"
    picture_width = page.locator(".sr-swipe-image").first.bounding_box()["width"]
    slider_width = slider.bounding_box()["width"]
    assert slider_width >= 0.9 * picture_width, f"swipe slider {slider_width} px under a {picture_width} px picture"
    # Drag the handle to a tenth of the track, as a person would (measured after scrolling, so the
    # coordinates are current), then also move it with the keyboard in case the drag missed.
    track = slider.locator(".noUi-target").first.bounding_box()
    handle.hover()
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.1, track["y"] + track["height"] / 2, steps=10)
    page.mouse.up()
    try:
        wait_for_new_image(page, "sr-swipe-image", before, timeout_ms=15_000)
    except Exception:
        handle.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        wait_for_new_image(page, "sr-swipe-image", before, timeout_ms=30_000)
    assert image_source(page, "sr-swipe-image") != before


def test_training_run_updates_the_plot(browser_page) -> None:
    page, name = browser_page, "03_pre_upsampling.ipynb"
    run_lesson(page, name)
    page.locator(".sr-training-plot").first.scroll_into_view_if_needed(timeout=60_000)
    before = image_source(page, "sr-training-plot")
    assert before, "the training plot did not render"
    page.locator(".sr-run-button").first.click()
    wait_for_new_image(page, "sr-training-plot", before, timeout_ms=120_000)
    assert image_source(page, "sr-training-plot") != before


def test_descent_playground_labels_fit(browser_page) -> None:
    run_lesson(browser_page, "05_gradient_descent.ipynb")  # its checks: no error, no label cut off
