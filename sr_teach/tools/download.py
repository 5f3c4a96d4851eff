"""Fetch the standard super-resolution image sets into the layout sr_teach reads.

    DATA_DIR/NAME/HR/<image>.png
    DATA_DIR/NAME/LR_bicubic/X<s>/<image>.png    (only where the archive ships LR images)

The sets are research images without a licence that lets us redistribute them, so the project never
commits them; `download_dataset` fetches them from the archives their authors (or well-known
mirrors) publish (`sr_teach.tools.sources`), checks the published checksum before unpacking, and
leaves DATA_DIR as it was on any error. No internet here? Fetch the archive another way and give
it as a file:// URL: `download_dataset("Set5", data_dir, source=replace(SOURCES["Set5"], url=...))`.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import io
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from sr_teach.tools.sources import SOURCES, ArchiveFormat, DatasetSource, MemberRule

if TYPE_CHECKING:
    from tqdm import tqdm

# Long enough for a slow university server to answer, short enough that a dead one fails in a lesson.
TIMEOUT_SECONDS = 60
# 1 MiB reads: few Python-level iterations for a 3.5 GB archive, little memory.
CHUNK_BYTES = 1 << 20

# A regular file inside an archive: its path, and a function that reads its bytes (only when wanted).
ArchiveFile = tuple[PurePosixPath, Callable[[], bytes]]


class DownloadError(RuntimeError):
    """The network, the server or the archive let us down; DATA_DIR was left untouched."""


class ChecksumError(DownloadError):
    """The bytes that arrived are not the archive whose checksum was published."""


class UnsafeArchiveError(DownloadError):
    """The archive names a path outside the folder it is unpacked into (absolute, or with `..`)."""


class UnverifiedSourceError(DownloadError):
    """The source publishes no checksum and the caller did not pass allow_unverified=True."""


def download_dataset(
    name: str,
    data_dir: str | Path,
    *,
    force: bool = False,
    allow_unverified: bool = False,
    progress: bool = True,
    source: DatasetSource | None = None,
) -> Path:
    """Download set `name` into `data_dir/name` (HR/ and, where shipped, LR_bicubic/X<s>/) and return that folder.

    In this order, each step for a reason: refuse early (unknown name, NAME already there, no
    checksum), so nothing is downloaded in vain; stream the archive into a hidden temporary folder
    inside DATA_DIR (the same file system, so the final rename is atomic), hashing the bytes as they
    arrive; compare the hash with the published one *before* opening the archive; unpack only the
    members the source's `MemberRule`s ask for, refusing absolute or `..` paths, as PNG; rename the
    folder into place. On any error, Ctrl-C included, the temporary folder is deleted.

    `source` replaces SOURCES[name], e.g. to read a copy of the archive from a file:// URL.
    `force` replaces an existing folder, but only once the new one is complete.
    `allow_unverified` accepts a source without a published checksum (its sha256 is printed).
    """
    if source is None:
        if name not in SOURCES:
            raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(SOURCES)}.")
        source = SOURCES[name]
    if name in ("", ".", "..") or Path(name).name != name:
        raise ValueError(f"A dataset name must be a plain folder name, not {name!r}.")

    data_dir = Path(data_dir).expanduser()
    target = data_dir / name
    _refuse_existing(target, force)
    if not source.is_verified and not allow_unverified:
        raise UnverifiedSourceError(
            f"No checksum is published for {name} ({source.url}), so sr_teach cannot tell a correct download "
            f"from a corrupt or tampered one. If you trust that address, call "
            f"download_dataset({name!r}, data_dir, allow_unverified=True); the sha256 of what arrives is "
            f"printed so it can be recorded in sr_teach/tools/download.py."
        )

    data_dir.mkdir(parents=True, exist_ok=True)
    # A dot-folder next to the target: invisible to the dataset listing, and on the same file
    # system, so renaming the finished folder into place is atomic.
    work_dir = Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=data_dir))
    try:
        if progress:
            size = f" (about {source.size_megabytes:,} MB)" if source.size_megabytes else ""
            print(f"Downloading {name} from {source.url}{size}")
        archive = work_dir / "archive"
        sha256, md5, byte_count = _fetch(source.url, archive, name=name, progress=progress)
        _verify(source, sha256, md5)
        if not source.is_verified:
            print(
                f"{name}: UNVERIFIED download from {source.url}: {byte_count:,} bytes, sha256 {sha256}. "
                f"Record this sha256 in SOURCES so later downloads are checked."
            )
        staged = work_dir / name
        _unpack(archive, source, staged)
        archive.unlink()  # free the space before the old set (if any) is moved aside
        _move_into_place(staged, target, work_dir, force)
    finally:
        # Runs on success, on errors and on KeyboardInterrupt alike: nothing half-written survives.
        shutil.rmtree(work_dir, ignore_errors=True)
    if progress:
        print(f"{name}: installed in {target}")
    return target


def _refuse_existing(target: Path, force: bool) -> None:
    if (target.exists() or target.is_symlink()) and not force:
        raise FileExistsError(
            f"{target} already exists; pass force=True to replace it "
            f"(the old folder is kept until the new one is complete)."
        )


def _offline_hint(name: str) -> str:
    return (
        f"If this machine cannot reach it, fetch the archive another way and pass "
        f"source=dataclasses.replace(SOURCES[{name!r}], url=Path(archive).resolve().as_uri()), "
        f"or copy the images into DATA_DIR/{name}/HR/ yourself."
    )


def _fetch(url: str, destination: Path, *, name: str, progress: bool) -> tuple[str, str, int]:
    """Stream `url` into `destination`; return the sha256 and md5 hex digests and the byte count."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    received = 0
    expected: int | None = None
    request = urllib.request.Request(url, headers={"User-Agent": "sr_teach dataset download"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response, destination.open("wb") as file:
            length_header = response.headers.get("Content-Length")
            expected = int(length_header) if length_header and length_header.isdigit() else None
            bar = _progress_bar(expected, name) if progress else None
            try:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    sha256.update(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as error:  # before URLError: it is a subclass
        error.close()
        raise DownloadError(f"{url} answered HTTP {error.code} ({error.reason}). {_offline_hint(name)}") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"Could not reach {url}: {error.reason}. {_offline_hint(name)}") from error
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, a full disk
        raise DownloadError(
            f"Downloading {url} failed after {received:,} bytes: {error!r}. {_offline_hint(name)}"
        ) from error
    # http.client returns a short body without complaint when the server hangs up early, so the
    # Content-Length promise is checked here; the checksum would catch it too, where there is one.
    if expected is not None and received != expected:
        raise DownloadError(
            f"The download of {url} stopped after {received:,} of {expected:,} bytes (the connection was closed). "
            f"Try again. {_offline_hint(name)}"
        )
    return sha256.hexdigest(), md5.hexdigest(), received


def _progress_bar(total_bytes: int | None, name: str) -> tqdm | None:
    """A byte-counting bar when tqdm is installed (it is optional), else None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def _verify(source: DatasetSource, sha256: str, md5: str) -> None:
    """Raise ChecksumError unless every published checksum matches the bytes that arrived."""
    for algorithm, expected, actual in (("sha256", source.sha256, sha256), ("md5", source.md5, md5)):
        if expected is not None and actual != expected:
            raise ChecksumError(
                f"The archive from {source.url} has {algorithm} {actual}, but {expected} was published for "
                f"{source.name}. The download is corrupt, or the file on the server changed; nothing was "
                f"installed. Try again; if it persists, report it (the set may need a new source)."
            )


def _checked_member_path(member_name: str) -> PurePosixPath:
    """The member's path, or UnsafeArchiveError when unpacking it could write outside the target folder."""
    # Zips made on Windows may use backslashes; treat them as separators so "..\\" is caught too.
    path = PurePosixPath(member_name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"[A-Za-z]:", member_name) or ".." in path.parts:
        raise UnsafeArchiveError(
            f"The archive holds the member {member_name!r}, which points outside the folder it is unpacked "
            f"into; refusing to unpack it."
        )
    return path


def _zip_files(archive_path: Path) -> Iterator[ArchiveFile]:
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            member_path = _checked_member_path(info.filename)
            if not info.is_dir():
                yield member_path, functools.partial(archive.read, info)


def _tar_files(archive_path: Path, mode: str) -> Iterator[ArchiveFile]:
    with tarfile.open(archive_path, mode) as archive:
        for member in archive:
            member_path = _checked_member_path(member.name)
            # Only regular files: links and devices are never created, so they cannot redirect a write.
            if member.isfile():
                yield member_path, functools.partial(_read_tar_member, archive, member)


def _read_tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    member_file = archive.extractfile(member)
    assert member_file is not None, f"{member.name} is a regular file, so it has contents"
    with member_file:
        return member_file.read()


def _archive_files(archive_path: Path, archive_format: ArchiveFormat) -> Iterator[ArchiveFile]:
    """Each regular file in the archive as (path, function returning its bytes); every path is checked first."""
    if archive_format == "zip":
        return _zip_files(archive_path)
    return _tar_files(archive_path, "r:gz" if archive_format == "tar.gz" else "r:")


def _matching_rule(member_path: PurePosixPath, rules: tuple[MemberRule, ...]) -> MemberRule | None:
    # macOS zips carry "__MACOSX/.../._0801.png" shadow files and ".DS_Store"; they match "*.png"
    # but are not images.
    if any(part.startswith(".") or part == "__MACOSX" for part in member_path.parts):
        return None
    return next((rule for rule in rules if member_path.match(rule.pattern)), None)


def _unpack(archive_path: Path, source: DatasetSource, staged: Path) -> None:
    """Write the archive members the source's rules select into `staged`, laid out as HR/ and LR_bicubic/X<s>/."""
    staged.mkdir()
    written: set[Path] = set()
    try:
        for member_path, read_member in _archive_files(archive_path, source.archive_format):
            rule = _matching_rule(member_path, source.members)
            if rule is None:
                continue
            stem = member_path.stem
            if rule.name_suffix and stem.endswith(rule.name_suffix):
                stem = stem[: -len(rule.name_suffix)]
            destination = staged / rule.folder / f"{stem}.png"
            if destination in written:
                raise DownloadError(
                    f"Two members of {source.url} map onto {rule.folder}/{stem}.png; "
                    f"the rules for {source.name} need fixing."
                )
            destination.parent.mkdir(parents=True, exist_ok=True)
            _write_png(read_member(), member_path.suffix.lower(), destination)
            written.add(destination)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
        raise DownloadError(
            f"The archive from {source.url} could not be read ({error}); nothing was installed."
        ) from error
    _check_layout(staged, source)


def _write_png(data: bytes, suffix: str, destination: Path) -> None:
    if suffix == ".png":
        destination.write_bytes(data)  # byte for byte: no re-encoding of the ground truth
        return
    from PIL import Image  # only the BMP (T91) and JPEG (BSD200) archives need decoding

    with Image.open(io.BytesIO(data)) as image:
        image.save(destination, format="PNG")


def _check_layout(staged: Path, source: DatasetSource) -> None:
    """Fail loudly if the archive did not give the set we expected, instead of installing a wrong one."""
    high_resolution = staged / "HR"
    hr_names = sorted(path.name for path in high_resolution.glob("*.png")) if high_resolution.is_dir() else []
    if not hr_names:
        patterns = ", ".join(rule.pattern for rule in source.members if rule.folder == "HR")
        raise DownloadError(
            f"No member of {source.url} matched {patterns}; the archive's layout may have changed. "
            f"Nothing was installed."
        )
    if source.expected_image_count is not None and len(hr_names) != source.expected_image_count:
        raise DownloadError(
            f"{source.name} should have {source.expected_image_count} HR images but the archive from "
            f"{source.url} gave {len(hr_names)}. Nothing was installed."
        )
    for low_resolution in sorted((staged / "LR_bicubic").glob("X*")):
        lr_names = sorted(path.name for path in low_resolution.glob("*.png"))
        if lr_names != hr_names:
            raise DownloadError(
                f"{source.name}: LR_bicubic/{low_resolution.name} does not hold one image per HR image "
                f"({len(lr_names)} vs {len(hr_names)}, or different names). Nothing was installed."
            )


def _move_into_place(staged: Path, target: Path, work_dir: Path, force: bool) -> None:
    """Rename the complete `staged` folder to `target`; with force, swap out the old one only now."""
    if target.exists() or target.is_symlink():
        _refuse_existing(target, force)  # again: someone may have created it while we downloaded
        previous = work_dir / "previous"
        target.rename(previous)
        try:
            staged.rename(target)
        except BaseException:
            previous.rename(target)  # put the old set back: a failed replace must not lose it
            raise
        # `previous` is deleted with work_dir by the caller.
    else:
        staged.rename(target)
