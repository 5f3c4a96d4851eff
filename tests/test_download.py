"""sr_teach.tools.download against archives served from 127.0.0.1: no internet, CPU only, well under a second each.

The archives copy the inner layout of the real ones (EDSR's benchmark.tar, DIV2K's zips, SRCNN's
training zip) and go through the real SOURCES rules, with only the URL and checksum replaced.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_teach.tools import download
from sr_teach.tools.download import (
    SOURCES,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    UnverifiedSourceError,
    download_dataset,
)

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
    with pytest.raises(UnverifiedSourceError, match="allow_unverified=True"):
        download_dataset("T91", data_dir, source=source, progress=False)
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
    assert source.url in message and "as_uri" in message  # names the URL and offers the offline route
    assert list(data_dir.iterdir()) == []


def test_unreachable_server_is_a_clear_error(data_dir: Path) -> None:
    # Port 9 on 127.0.0.1 ("discard") has no listener here: the connection is refused at once.
    source = replace(SOURCES["Set5"], url="http://127.0.0.1:9/benchmark.tar")
    with pytest.raises(DownloadError, match="Could not reach http://127.0.0.1:9/benchmark.tar"):
        download_dataset("Set5", data_dir, source=source, progress=False)
    assert list(data_dir.iterdir()) == []


def test_existing_folder_is_refused_without_force_and_kept(server: Server, data_dir: Path) -> None:
    existing = data_dir / "Set5" / "HR"
    existing.mkdir(parents=True)
    (existing / "mine.png").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="force=True"):
        download_dataset("Set5", data_dir, source=set5_source(server), progress=False)
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
    def interrupted(*arguments: object) -> None:
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
