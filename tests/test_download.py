"""sr_teach.tools.download against archives served from 127.0.0.1: no internet, CPU only, well under a second each.

The archives copy the inner layout of the real ones (EDSR's benchmark.tar, DIV2K's zips, SRCNN's
training zip) and go through the real SOURCES rules, with only the URL and checksum replaced.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_teach.cli import main
from sr_teach.tools import download
from sr_teach.tools.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    UnverifiedSourceError,
    download_dataset,
)
from sr_teach.tools.sources import SOURCES, SourceFile

SET5_IMAGES = ("baby", "bird", "butterfly", "head", "woman")


def png_bytes(width: int, height: int, seed: int) -> bytes:
    """A small random RGB PNG; the seed makes each image different so mix-ups would show."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    with tarfile.open(path, mode) as archive:
        for member_name, data in members.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def write_zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for member_name, data in members.items():
            archive.writestr(member_name, data)
    return path.read_bytes()


def edsr_benchmark_members() -> dict[str, bytes]:
    """benchmark/<set>/HR/x.png and benchmark/<set>/LR_bicubic/X<s>/x<s>.png, as in EDSR's benchmark.tar."""
    members = {}
    for index, image in enumerate(SET5_IMAGES):
        members[f"benchmark/Set5/HR/{image}.png"] = png_bytes(12, 12, seed=index)
        for scale in (2, 3, 4):
            low_resolution = png_bytes(12 // scale, 12 // scale, seed=10 * scale + index)
            members[f"benchmark/Set5/LR_bicubic/X{scale}/{image}x{scale}.png"] = low_resolution
    # Another set in the same archive: downloading Set5 must not pick it up.
    members["benchmark/Set14/HR/baboon.png"] = png_bytes(12, 12, seed=99)
    return members


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArchiveHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; /truncated/<file> promises the whole file but hangs up halfway."""

    def do_GET(self) -> None:
        self.server.request_paths.append(self.path)
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *arguments: object) -> None:
        pass  # keep pytest's output clean


@dataclass
class Server:
    folder: Path  # files put here are served
    url: str  # http://127.0.0.1:<port>
    request_paths: list[str]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    # A proxy configured on the test machine must not intercept requests to our local server.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(ArchiveHandler, directory=str(folder)))
    httpd.request_paths = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(folder, f"http://127.0.0.1:{httpd.server_port}", httpd.request_paths)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def set5_source(server: Server, *, truncated: bool = False) -> download.DatasetSource:
    """The real Set5 rules over a small EDSR-style benchmark.tar.gz, verified by its sha256."""
    data = write_tar(server.folder / "benchmark.tar.gz", edsr_benchmark_members())
    prefix = "/truncated" if truncated else ""
    return replace(
        SOURCES["Set5"],
        url=f"{server.url}{prefix}/benchmark.tar.gz",
        sha256=sha256_of(data),
        md5=None,
        archive_format="tar.gz",
    )


def test_tar_gz_success_gives_the_layout(server: Server, data_dir: Path) -> None:
    members = edsr_benchmark_members()
    target = download_dataset("Set5", data_dir, source=set5_source(server), progress=False)

    assert target == data_dir / "Set5"
    assert sorted(path.name for path in (target / "HR").iterdir()) == [f"{image}.png" for image in SET5_IMAGES]
    for scale in (2, 3, 4):
        # EDSR's "babyx2.png" becomes "baby.png", the name of its HR image.
        lr_folder = target / "LR_bicubic" / f"X{scale}"
        assert sorted(path.name for path in lr_folder.iterdir()) == [f"{image}.png" for image in SET5_IMAGES]
        assert (lr_folder / "bird.png").read_bytes() == members[f"benchmark/Set5/LR_bicubic/X{scale}/birdx{scale}.png"]
    assert (target / "HR" / "baby.png").read_bytes() == members["benchmark/Set5/HR/baby.png"]  # byte for byte
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]  # no Set14, no temporary folder


def test_plain_tar_verified_by_md5(server: Server, data_dir: Path) -> None:
    data = write_tar(server.folder / "benchmark.tar", edsr_benchmark_members(), mode="w")
    source = replace(SOURCES["Set5"], url=f"{server.url}/benchmark.tar", md5=hashlib.md5(data).hexdigest())
    assert source.sha256 is None and source.archive_format == "tar"  # the real Set5 source has only an md5

    target = download_dataset("Set5", data_dir, source=source, progress=True)
    assert len(list((target / "HR").glob("*.png"))) == 5


def test_zip_success_skips_macos_shadow_files(server: Server, data_dir: Path) -> None:
    members = {f"DIV2K_valid_HR/{number:04d}.png": png_bytes(8, 6, seed=number) for number in (801, 802, 803)}
    members["__MACOSX/DIV2K_valid_HR/._0801.png"] = b"not an image"
    data = write_zip(server.folder / "DIV2K_valid_HR.zip", members)
    source = replace(
        SOURCES["DIV2K_valid"],
        url=f"{server.url}/DIV2K_valid_HR.zip",
        sha256=sha256_of(data),
        md5=None,
        expected_image_count=3,
    )

    target = download_dataset("DIV2K_valid", data_dir, source=source, progress=False)
    assert sorted(path.name for path in (target / "HR").iterdir()) == ["0801.png", "0802.png", "0803.png"]
    assert not (target / "LR_bicubic").exists()


def test_bmp_is_stored_as_png_and_unverified_sha256_is_printed(
    server: Server, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="BMP")
    members = {"SRCNN/Train/t1.bmp": buffer.getvalue(), "SRCNN/generate_train.m": b"% matlab"}
    data = write_zip(server.folder / "SRCNN_train.zip", members)
    source = replace(SOURCES["T91"], url=f"{server.url}/SRCNN_train.zip", expected_image_count=1)

    target = download_dataset("T91", data_dir, source=source, allow_unverified=True, progress=False)
    with Image.open(target / "HR" / "t1.png") as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image), pixels)  # PNG is lossless
    assert sha256_of(data) in capsys.readouterr().out


def test_archive_fetched_by_hand_installs_from_a_file_url(tmp_path: Path, data_dir: Path) -> None:
    # The offline route the error messages suggest: the checksum still guards it.
    archive = tmp_path / "benchmark.tar"
    data = write_tar(archive, edsr_benchmark_members(), mode="w")
    with pytest.raises(ChecksumError, match="md5"):
        download_dataset("Set5", data_dir, source=replace(SOURCES["Set5"], url=archive.as_uri()), progress=False)
    assert list(data_dir.iterdir()) == []

    source = replace(SOURCES["Set5"], url=archive.as_uri(), md5=hashlib.md5(data).hexdigest())
    target = download_dataset("Set5", data_dir, source=source, progress=False)
    assert len(list((target / "LR_bicubic" / "X3").glob("*.png"))) == 5


def test_unverified_source_is_refused_before_downloading(server: Server, data_dir: Path) -> None:
    write_zip(server.folder / "SRCNN_train.zip", {"SRCNN/Train/t1.bmp": b"BM"})
    source = replace(SOURCES["T91"], url=f"{server.url}/SRCNN_train.zip")
    with pytest.raises(UnverifiedSourceError, match="allow_unverified=True") as raised:
        download_dataset("T91", data_dir, source=source, progress=False)
    # Said for both audiences: the command-line flag and the Python argument.
    assert "pass --allow-unverified (allow_unverified=True in Python)" in str(raised.value)
    assert server.request_paths == []
    assert list(data_dir.iterdir()) == []


def test_wrong_sha256_raises_and_leaves_nothing(server: Server, data_dir: Path) -> None:
    source = replace(set5_source(server), sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        download_dataset("Set5", data_dir, source=source, progress=False)
    assert list(data_dir.iterdir()) == []  # no Set5, no temporary files


def test_connection_dropped_mid_file_raises_and_leaves_nothing(server: Server, data_dir: Path) -> None:
    with pytest.raises(DownloadError, match=r"(stopped|failed) after"):  # Python versions differ in which notices
        download_dataset("Set5", data_dir, source=set5_source(server, truncated=True), progress=False)
    assert server.request_paths == ["/truncated/benchmark.tar.gz"]
    assert list(data_dir.iterdir()) == []


def test_http_404_is_a_clear_error_naming_the_url(server: Server, data_dir: Path) -> None:
    source = replace(SOURCES["Set5"], url=f"{server.url}/missing.tar")
    with pytest.raises(DownloadError, match="404") as raised:
        download_dataset("Set5", data_dir, source=source, progress=False)
    message = str(raised.value)
    assert source.url in message and "sr-teach download Set5 --from" in message  # names the URL and the offline route
    assert list(data_dir.iterdir()) == []


def test_unreachable_server_is_a_clear_error(data_dir: Path) -> None:
    # Port 9 on 127.0.0.1 ("discard") has no listener here: the connection is refused at once.
    source = replace(SOURCES["Set5"], url="http://127.0.0.1:9/benchmark.tar")
    with pytest.raises(DownloadError, match="Could not reach http://127.0.0.1:9/benchmark.tar") as raised:
        download_dataset("Set5", data_dir, source=source, progress=False)
    # The way out without internet: the URL to fetch elsewhere, and the command that installs the file.
    message = str(raised.value)
    assert "fetch http://127.0.0.1:9/benchmark.tar" in message and "sr-teach download Set5 --from FILE" in message
    assert "dataclasses.replace" not in message and "\n" not in message
    assert list(data_dir.iterdir()) == []


def test_existing_folder_is_refused_without_force_and_kept(server: Server, data_dir: Path) -> None:
    existing = data_dir / "Set5" / "HR"
    existing.mkdir(parents=True)
    (existing / "mine.png").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="force=True") as raised:
        download_dataset("Set5", data_dir, source=set5_source(server), progress=False)
    assert "pass --force (force=True in Python)" in str(raised.value)
    assert server.request_paths == []  # refused before downloading
    assert (existing / "mine.png").read_bytes() == b"keep me"
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]


def test_force_replaces_the_existing_folder(server: Server, data_dir: Path) -> None:
    (data_dir / "Set5" / "HR").mkdir(parents=True)
    (data_dir / "Set5" / "HR" / "old.png").write_bytes(b"old")
    target = download_dataset("Set5", data_dir, source=set5_source(server), force=True, progress=False)
    assert sorted(path.name for path in (target / "HR").iterdir()) == [f"{image}.png" for image in SET5_IMAGES]
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]


def test_failed_forced_download_keeps_the_old_folder(server: Server, data_dir: Path) -> None:
    (data_dir / "Set5" / "HR").mkdir(parents=True)
    (data_dir / "Set5" / "HR" / "old.png").write_bytes(b"old")
    source = replace(set5_source(server), sha256="0" * 64)
    with pytest.raises(ChecksumError):
        download_dataset("Set5", data_dir, source=source, force=True, progress=False)
    assert (data_dir / "Set5" / "HR" / "old.png").read_bytes() == b"old"
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]


@pytest.mark.parametrize(
    ("archive_name", "evil_member"),
    [("evil.tar.gz", "../evil.png"), ("evil.zip", "/tmp/evil.png"), ("evil.zip", "benchmark/Set5/HR/..\\..\\evil.png")],
)
def test_path_traversal_member_is_rejected(
    server: Server, data_dir: Path, tmp_path: Path, archive_name: str, evil_member: str
) -> None:
    members = {**edsr_benchmark_members(), evil_member: png_bytes(4, 4, seed=1)}
    if archive_name.endswith(".zip"):
        data, archive_format = write_zip(server.folder / archive_name, members), "zip"
    else:
        data, archive_format = write_tar(server.folder / archive_name, members), "tar.gz"
    source = replace(
        SOURCES["Set5"],
        url=f"{server.url}/{archive_name}",
        sha256=sha256_of(data),
        md5=None,
        archive_format=archive_format,
    )

    with pytest.raises(UnsafeArchiveError, match="outside"):
        download_dataset("Set5", data_dir, source=source, progress=False)
    assert list(data_dir.iterdir()) == []
    assert not (tmp_path / "evil.png").exists() and not (data_dir.parent / "evil.png").exists()


def test_archive_with_the_wrong_image_count_is_not_installed(server: Server, data_dir: Path) -> None:
    source = replace(set5_source(server), expected_image_count=6)
    with pytest.raises(DownloadError, match="should have 6 HR images"):
        download_dataset("Set5", data_dir, source=source, progress=False)
    assert list(data_dir.iterdir()) == []


def test_keyboard_interrupt_leaves_nothing(server: Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*arguments: object, **keywords: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_check_layout", interrupted)  # Ctrl-C while unpacking
    with pytest.raises(KeyboardInterrupt):
        download_dataset("Set5", data_dir, source=set5_source(server), progress=False)
    assert list(data_dir.iterdir()) == []


def test_unknown_name_lists_the_known_ones(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="Set5, Set14, BSD100"):
        download_dataset("Set6", data_dir)
    assert list(data_dir.iterdir()) == []


def test_every_source_is_well_formed() -> None:
    for name, source in SOURCES.items():
        assert source.name == name
        assert source.url.startswith("https://"), f"{name}: fetch over TLS"
        assert source.citation and source.licence
    unverified = sorted(name for name, source in SOURCES.items() if not source.is_verified)
    assert unverified == ["T91"], "a new unverified source must be a deliberate choice"


# --- `sr-teach download NAME --from ARCHIVE_OR_FOLDER` and bad inputs, through the command line ---


def run_download(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    status = main(["download", *arguments])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> str:
    assert status == 1
    # stderr also holds tqdm's progress bar, whose lines start with the set's name.
    lines = [line for line in err.splitlines() if line.startswith("sr-teach")]
    assert len(lines) == 1 and "Traceback" not in err, f"expected one error line on stderr, got {err!r}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def unpack_into(folder: Path, members: dict[str, bytes]) -> Path:
    """What unpacking the archive by hand gives: the members as files under `folder`."""
    for member_name, data in members.items():
        path = folder / member_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


@pytest.fixture
def benchmark_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An EDSR-style benchmark.tar fetched "on another machine", with SOURCES['Set5'] publishing its md5.

    The URL points at a port nobody listens on: installing from the file must not touch the network.
    """
    archive = tmp_path / "fetched" / "benchmark.tar"
    archive.parent.mkdir()
    data = write_tar(archive, edsr_benchmark_members(), mode="w")
    source = replace(SOURCES["Set5"], url="http://127.0.0.1:9/benchmark.tar", md5=hashlib.md5(data).hexdigest())
    monkeypatch.setitem(SOURCES, "Set5", source)
    return archive


def assert_set5_installed(target: Path) -> None:
    members = edsr_benchmark_members()
    assert sorted(path.name for path in (target / "HR").iterdir()) == [f"{image}.png" for image in SET5_IMAGES]
    for scale in (2, 3, 4):
        lr_image = target / "LR_bicubic" / f"X{scale}" / "bird.png"
        assert lr_image.read_bytes() == members[f"benchmark/Set5/LR_bicubic/X{scale}/birdx{scale}.png"]
    assert (target / "HR" / "baby.png").read_bytes() == members["benchmark/Set5/HR/baby.png"]


def test_from_archive_installs_without_the_network(
    benchmark_tar: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert status == 0, err
    assert_set5_installed(data_dir / "Set5")
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]  # no temporary folder left
    assert benchmark_tar.exists()  # the user's file is read, not moved or deleted
    assert str(benchmark_tar) in out


@pytest.mark.parametrize(("name", "algorithm"), [("DIV2K_valid", "sha256"), ("Set5", "md5")])
def test_from_a_wrong_archive_names_both_checksums_and_installs_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], name: str, algorithm: str
) -> None:
    # A real entry of SOURCES, and a file that is not its archive (an incomplete copy, another set...).
    wrong = tmp_path / "downloaded.zip"
    data = write_zip(wrong, {"DIV2K_valid_HR/0801.png": png_bytes(4, 4, seed=0)})
    found = sha256_of(data) if algorithm == "sha256" else hashlib.md5(data).hexdigest()
    status, _, err = run_download(capsys, name, "--from", str(wrong), "--data-dir", str(data_dir))
    expected = getattr(SOURCES[name], algorithm)
    assert_one_line_error(status, err, str(wrong), f"{algorithm} {found}", expected, SOURCES[name].url, "--from")
    assert list(data_dir.iterdir()) == []


def test_from_refuses_an_existing_set_without_force(
    benchmark_tar: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = data_dir / "Set5" / "HR"
    existing.mkdir(parents=True)
    (existing / "mine.png").write_bytes(b"keep me")
    status, _, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, str(data_dir / "Set5"), "pass --force (force=True in Python)")
    assert (existing / "mine.png").read_bytes() == b"keep me"

    status, _, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--force", "--data-dir", str(data_dir))
    assert status == 0, err
    assert_set5_installed(data_dir / "Set5")
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]


def test_from_folder_is_refused_without_allow_unverified(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only archives have published checksums; the files of an unpacked one cannot be checked.
    folder = unpack_into(tmp_path / "unpacked", edsr_benchmark_members())
    status, _, err = run_download(capsys, "Set5", "--from", str(folder), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, str(folder), "folder", "checksum", "--allow-unverified", "allow_unverified=True")
    assert list(data_dir.iterdir()) == []


@pytest.mark.parametrize("given", ["", "benchmark", "benchmark/Set5"])
def test_from_folder_installs_with_allow_unverified(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    # Wherever the user unpacked it (here under a hidden folder) and whichever level they name.
    unpacked = unpack_into(tmp_path / ".cache" / "unpacked", edsr_benchmark_members())
    target = download_dataset(
        "Set5", data_dir, from_path=unpacked / given, allow_unverified=True, progress=True
    )  # the real SOURCES["Set5"]: nothing is fetched
    assert target == data_dir / "Set5"
    assert_set5_installed(target)
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]
    assert "UNVERIFIED" in capsys.readouterr().out


def test_from_folder_missing_images_is_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = edsr_benchmark_members()
    del members["benchmark/Set5/HR/woman.png"]
    folder = unpack_into(tmp_path / "unpacked", members)
    status, _, err = run_download(
        capsys, "Set5", "--from", str(folder), "--allow-unverified", "--data-dir", str(data_dir)
    )
    assert_one_line_error(status, err, "should have 5 HR images", str(folder), "4")
    assert list(data_dir.iterdir()) == []

    # A folder already in sr_teach's layout (NAME/HR/*.png) is not what the archive unpacks into.
    flat = tmp_path / "flat" / "Set5" / "HR"
    flat.mkdir(parents=True)
    (flat / "baby.png").write_bytes(png_bytes(4, 4, seed=0))
    status, _, err = run_download(
        capsys, "Set5", "--from", str(flat.parent), "--allow-unverified", "--data-dir", str(data_dir)
    )
    assert_one_line_error(status, err, str(flat.parent), "benchmark/Set5/HR/*.png")
    assert list(data_dir.iterdir()) == []


def test_from_with_several_names_is_an_error(
    benchmark_tar: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_download(capsys, "Set5", "Set14", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, "--from", "one set", "sr-teach download Set5 --from")
    assert list(data_dir.iterdir()) == []


def test_from_a_path_that_does_not_exist(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "benchmark.tar"
    status, _, err = run_download(capsys, "Set5", "--from", str(missing), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, str(missing), "does not exist")
    assert list(data_dir.iterdir()) == []


def test_from_a_file_that_is_not_a_zip(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # T91 publishes no checksum, so only the archive's format can tell a wrong file.
    page = tmp_path / "SRCNN_train.zip"
    page.write_text("<html>Please log in</html>")
    status, _, err = run_download(capsys, "T91", "--from", str(page), "--allow-unverified", "--data-dir", str(data_dir))
    assert_one_line_error(status, err, str(page), "zip", "nothing was installed")
    assert list(data_dir.iterdir()) == []


def test_archive_member_that_is_not_an_image(server: Server, data_dir: Path) -> None:
    data = write_zip(server.folder / "SRCNN_train.zip", {"SRCNN/Train/t1.bmp": b"BM not really a bitmap"})
    assert data
    source = replace(SOURCES["T91"], url=f"{server.url}/SRCNN_train.zip", expected_image_count=1)
    with pytest.raises(DownloadError, match="SRCNN/Train/t1.bmp"):
        download_dataset("T91", data_dir, source=source, allow_unverified=True, progress=False)
    assert list(data_dir.iterdir()) == []


def test_unknown_name_is_refused_before_anything_is_downloaded(
    server: Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(SOURCES, "Set5", set5_source(server))
    status, _, err = run_download(capsys, "Set5", "set14", "--data-dir", str(data_dir))
    assert_one_line_error(status, err, "'set14'", "Did you mean Set14?")
    assert server.request_paths == []
    assert list(data_dir.iterdir()) == []


def test_a_name_given_twice_is_installed_once(
    server: Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(SOURCES, "Set5", set5_source(server))
    status, _, err = run_download(capsys, "Set5", "Set5", "--data-dir", str(data_dir))
    assert status == 0, err
    assert server.request_paths == ["/benchmark.tar.gz"]


def test_data_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "datasets"
    not_a_folder.write_text("")
    status, _, err = run_download(capsys, "Set5", "--data-dir", str(not_a_folder))
    assert_one_line_error(status, err, str(not_a_folder), "is a file", "--data-dir")


def test_unwritable_data_dir(
    benchmark_tar: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # chmod does not stop root (the test may run as root), so the refusal is simulated where it happens.
    def refused(*arguments: object, **keywords: object) -> str:
        raise PermissionError(13, "Permission denied", str(data_dir / ".Set5.download-x"))

    monkeypatch.setattr(download.tempfile, "mkdtemp", refused)
    status, _, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, f"Cannot write into the data directory {data_dir}", "--data-dir")


def make_leftover(data_dir: Path, suffix: str, *, hours_ago: float, previous_set: bool = False) -> Path:
    """The work folder of a download killed with no chance to clean up (kill -9, a power cut).

    With `previous_set`, killed between moving the old DATA_DIR/Set5 aside and renaming the new one in.
    """
    leftover = data_dir / f".Set5.download-{suffix}"
    (leftover / "Set5" / "HR").mkdir(parents=True)
    (leftover / "Set5" / "HR" / "new.png").write_bytes(png_bytes(4, 4, seed=0))
    if previous_set:
        (leftover / "previous" / "HR").mkdir(parents=True)
        (leftover / "previous" / "HR" / "old.png").write_bytes(b"old")
    else:
        (leftover / "archive").write_bytes(b"half an archive")
    when = time.time() - hours_ago * 3600
    for path in sorted(leftover.rglob("*"), reverse=True) + [leftover]:  # contents before their folder
        os.utime(path, (when, when))
    return leftover


def test_leftovers_of_a_killed_download_are_removed(
    benchmark_tar: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = make_leftover(data_dir, "old", hours_ago=3)
    recent = make_leftover(data_dir, "new", hours_ago=0)  # may belong to a download running right now
    status, out, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert status == 0, err
    assert not stale.exists() and str(stale) in out
    assert recent.exists() and str(recent) in out  # kept, but named so the user can delete it
    assert sorted(path.name for path in data_dir.iterdir()) == [recent.name, "Set5"]


def test_a_set_caught_mid_swap_by_a_kill_is_restored(
    benchmark_tar: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_leftover(data_dir, "old", hours_ago=3, previous_set=True)  # and DATA_DIR/Set5 is gone
    status, _, err = run_download(capsys, "Set5", "--from", str(benchmark_tar), "--data-dir", str(data_dir))
    assert_one_line_error(status, err, "--force")  # the old set is back, so it is not replaced silently
    assert (data_dir / "Set5" / "HR" / "old.png").read_bytes() == b"old"
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set5"]


# --- Sources of `files` (Set12, Classic5, LIVE1, LIVE1_gray): one URL and sha256 per file, no archive ---


def bmp_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="BMP")
    return buffer.getvalue()


def files_source(name: str, files: dict[str, bytes], base_url: str) -> download.DatasetSource:
    """The real SOURCES[name] with its files replaced by `files`, served from `base_url`, with their sha256."""
    pinned = tuple(SourceFile(f"{base_url}/{file_name}", sha256_of(data)) for file_name, data in files.items())
    return replace(SOURCES[name], files=pinned, expected_image_count=len(files))


def test_files_source_installs_each_file_from_a_local_server(server: Server, data_dir: Path) -> None:
    files = {"01.png": png_bytes(8, 6, seed=1), "02.png": png_bytes(6, 8, seed=2)}
    for file_name, data in files.items():
        (server.folder / file_name).write_bytes(data)
    target = download_dataset("Set12", data_dir, source=files_source("Set12", files, server.url), progress=True)
    assert sorted(server.request_paths) == ["/01.png", "/02.png"]  # each file fetched once, from its own URL
    for file_name, data in files.items():
        assert (target / "HR" / file_name).read_bytes() == data  # PNG sources are installed byte for byte
    assert sorted(path.name for path in data_dir.iterdir()) == ["Set12"]  # no temporary folder left


def test_files_source_stores_bmp_as_png_with_the_same_pixels(tmp_path: Path, data_dir: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, size=(5, 7), dtype=np.uint8)  # Classic5: 8-bit gray BMPs
    colour = np.random.default_rng(1).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)  # LIVE1: 24-bit BMPs
    files = {"barbara.bmp": bmp_bytes(gray), "bikes.bmp": bmp_bytes(colour)}
    unpack_into(tmp_path / "served", files)
    source = files_source("Classic5", files, (tmp_path / "served").as_uri())  # file:// URLs
    target = download_dataset("Classic5", data_dir, source=source, progress=False)
    for stem, pixels, mode in (("barbara", gray, "L"), ("bikes", colour, "RGB")):
        with Image.open(target / "HR" / f"{stem}.png") as image:
            assert (image.format, image.mode) == ("PNG", mode)
            np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("route", ["download", "--from folder"])
def test_files_source_refuses_a_file_with_another_sha256(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    files = {"01.png": png_bytes(4, 4, seed=1), "02.png": png_bytes(4, 4, seed=2)}
    folder = unpack_into(tmp_path / "fetched", files)
    source = files_source("Set12", files, folder.as_uri())
    (folder / "02.png").write_bytes(png_bytes(4, 4, seed=3))  # not the file whose sha256 is recorded
    monkeypatch.setitem(SOURCES, "Set12", source)
    from_folder = ("--from", str(folder)) if route == "--from folder" else ()
    status, _, err = run_download(capsys, "Set12", *from_folder, "--data-dir", str(data_dir))
    named = str(folder / "02.png") if from_folder else source.files[1].url
    line = assert_one_line_error(status, err, named, f"sha256 {sha256_of((folder / '02.png').read_bytes())}",
                                 source.files[1].sha256, "02.png of Set12", "nothing was installed")
    assert ("--from FOLDER" in line) == bool(from_folder)  # fetched again by hand, it goes in a folder
    assert list(data_dir.iterdir()) == []


@pytest.mark.parametrize("given", ["folder", "file"])
def test_files_source_from_a_folder_lacking_a_file(tmp_path: Path, data_dir: Path, given: str) -> None:
    # The real SOURCES["Set12"], and a folder without its files (or a file where the folder should be).
    folder = unpack_into(tmp_path / "fetched", {"02.png": png_bytes(4, 4, seed=2)})
    from_path = folder if given == "folder" else folder / "02.png"
    with pytest.raises(DownloadError, match=r"holds no 01\.png, one of the 12 files of https://github\.com/cszn"):
        download_dataset("Set12", data_dir, from_path=from_path, progress=False)
    assert list(data_dir.iterdir()) == []


def test_files_source_offline_hint_asks_for_the_folder(data_dir: Path) -> None:
    source = files_source("LIVE1", {"bikes.bmp": b"BM"}, "http://127.0.0.1:9")
    with pytest.raises(DownloadError, match="Could not reach http://127.0.0.1:9/bikes.bmp") as raised:
        download_dataset("LIVE1", data_dir, source=source, progress=False)
    assert f"fetch the folder {source.url}" in str(raised.value) and "--from FOLDER" in str(raised.value)
    assert list(data_dir.iterdir()) == []


def test_a_files_source_must_say_so_and_pin_each_sha256() -> None:
    with pytest.raises(ValueError, match='exactly when its archive_format is "files"'):
        replace(SOURCES["Set12"], files=())
    with pytest.raises(ValueError, match="01.png: sha256 must be 64"):
        replace(SOURCES["Set12"], files=(SourceFile("https://example.org/01.png", "0" * 63),))


RESTORATION_SETS = ("Set12", "Classic5", "LIVE1", "LIVE1_gray")


def read_manifest(datasets_dir: Path, name: str) -> list[dict[str, str]]:
    with (datasets_dir / name / "manifest.csv").open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.needs_datasets(*RESTORATION_SETS)
@pytest.mark.parametrize("name", RESTORATION_SETS)
def test_restoration_sources_pin_the_files_of_the_manifest(datasets_dir: Path, name: str) -> None:
    # manifest.csv: file, source (owner/repo@commit:path), source_sha256, png_sha256, ...
    expected = []
    for row in read_manifest(datasets_dir, name):
        repository, _, commit_and_path = row["source"].partition("@")
        commit, _, path = commit_and_path.partition(":")
        expected.append((f"https://raw.githubusercontent.com/{repository}/{commit}/{path}", row["source_sha256"]))
    assert [(file.url, file.sha256) for file in SOURCES[name].files] == expected
    assert SOURCES[name].expected_image_count == len(expected)


def source_folder_from_shared_pngs(datasets_dir: Path, name: str, folder: Path) -> dict[str, str]:
    """Rebuild the source files of `name` in `folder` from the shared PNGs: {file name: its sha256}.

    Set12 and LIVE1_gray are verbatim copies of their sources; Classic5's BMPs are written anew from
    the PNGs (same pixels, but not the bytes the manifest hashes, hence the sha256 returned).
    """
    files = {}
    for file in SOURCES[name].files:
        png = datasets_dir / name / "HR" / f"{Path(file.name).stem}.png"
        if file.name.endswith(".png"):
            files[file.name] = png.read_bytes()
        else:
            with Image.open(png) as image:
                files[file.name] = bmp_bytes(np.asarray(image))
    unpack_into(folder, files)
    return {file_name: sha256_of(data) for file_name, data in files.items()}


@pytest.mark.needs_datasets("Set12", "LIVE1_gray", "Classic5")
@pytest.mark.parametrize("name", ["Set12", "LIVE1_gray", "Classic5"])
def test_from_the_source_files_reproduces_the_shared_pngs(
    datasets_dir: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    # Laid out as a clone of the source repository, where another set's folder (found first) has the same names.
    clone = tmp_path / "clone"
    written = source_folder_from_shared_pngs(datasets_dir, name, clone / "testsets" / name)
    unpack_into(clone / "testsets" / "BSD68", {file.name: b"another image" for file in SOURCES[name].files})
    unpack_into(clone / ".git", {SOURCES[name].files[0].name: b"not looked at"})
    if name == "Classic5":  # the BMPs Pillow writes differ in their bytes from DnCNN's
        pinned = tuple(replace(file, sha256=written[file.name]) for file in SOURCES[name].files)
        monkeypatch.setitem(SOURCES, name, replace(SOURCES[name], files=pinned))
    assert all(written[file.name] == file.sha256 for file in SOURCES[name].files)

    status, _, err = run_download(capsys, name, "--from", str(clone), "--data-dir", str(data_dir))
    assert status == 0, err  # no --allow-unverified: every file was checked against its sha256
    rows = read_manifest(datasets_dir, name)
    assert sorted(path.name for path in (data_dir / name / "HR").iterdir()) == sorted(row["file"] for row in rows)
    for row in rows:
        installed = data_dir / name / "HR" / row["file"]
        with Image.open(installed) as image, Image.open(datasets_dir / name / "HR" / row["file"]) as shared:
            assert image.mode == shared.mode
            np.testing.assert_array_equal(np.asarray(image), np.asarray(shared))
        if name != "Classic5":  # verbatim PNG sources: the very bytes of the shared set
            assert sha256_of(installed.read_bytes()) == row["png_sha256"]
