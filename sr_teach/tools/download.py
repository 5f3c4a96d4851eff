"""Fetch the standard super-resolution and restoration image sets into the layout sr_teach reads.

    DATA_DIR/NAME/HR/<image>.png
    DATA_DIR/NAME/LR_bicubic/X<s>/<image>.png    (only where the archive ships LR images)

The sets are research images without a licence that lets us redistribute them, so the project never
commits them; `download_dataset` fetches them from the archives their authors (or well-known
mirrors) publish (`sr_teach.tools.sources`), or file by file where a set is no archive (Set12...),
checks the checksums before unpacking, and leaves DATA_DIR as it was on any error. No internet here?
Fetch the archive (or the files) on another machine and install from it, checked the same way:
`sr-teach download Set5 --from benchmark.tar`, `sr-teach download Set12 --from DnCNN/testsets/Set12`,
or `download_dataset("Set5", data_dir, from_path="benchmark.tar")`.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from sr_teach.tools.sources import ArchiveFormat, DatasetSource, MemberRule, SourceFile, find_source

if TYPE_CHECKING:
    from tqdm import tqdm

# Long enough for a slow university server to answer, short enough that a dead one fails in a lesson.
TIMEOUT_SECONDS = 60
# 1 MiB reads: few Python-level iterations for a 3.5 GB archive, little memory.
CHUNK_BYTES = 1 << 20
# A work folder nothing has touched for this long was left by a download that was killed (kill -9,
# a power cut: `finally` never ran). A younger one may belong to a download running right now.
LEFTOVER_SECONDS = 3600

# A regular file inside an archive: its path, and a function that reads its bytes (only when wanted).
ArchiveFile = tuple[PurePosixPath, Callable[[], bytes]]


class DownloadError(RuntimeError):
    """The network, the server, the archive or the data directory let us down; DATA_DIR was left as it was."""


class ChecksumError(DownloadError):
    """The bytes that arrived are not the archive whose checksum was published."""


class UnsafeArchiveError(DownloadError):
    """The archive names a path outside the folder it is unpacked into (absolute, or with `..`)."""


class UnverifiedSourceError(DownloadError):
    """Nothing can check what would be installed (no published checksum, or a folder), and the caller
    did not pass --allow-unverified (allow_unverified=True)."""


def download_dataset(
    name: str, data_dir: str | Path, *, force: bool = False, allow_unverified: bool = False, progress: bool = True,
    source: DatasetSource | None = None, from_path: str | Path | None = None,
) -> Path:
    """Download set `name` into `data_dir/name` (HR/ and, where shipped, LR_bicubic/X<s>/) and return that folder.

    In this order, each step for a reason: refuse early (unknown name, NAME already there, no
    checksum), so nothing is downloaded in vain; stream the archive into a hidden temporary folder
    inside DATA_DIR (the same file system, so the final rename is atomic), hashing the bytes as they
    arrive; compare the hash with the published one *before* opening the archive; unpack only the
    members the source's `MemberRule`s ask for, refusing absolute or `..` paths, as PNG; rename the
    folder into place. On any error, Ctrl-C included, the temporary folder is deleted (and the ones a
    killed download left behind go at the next start).

    `from_path` installs without the network, from the archive fetched elsewhere (the file the URL
    gives, checked against the same published checksum) or from the folder it was unpacked into
    (nothing can check loose files, so that needs `allow_unverified`). A source of `files` is fetched,
    or found by name under the folder `from_path`, file by file, each checked against its own sha256.
    `source` replaces SOURCES[name], e.g. to try another mirror.
    `force` replaces an existing folder, but only once the new one is complete.
    `allow_unverified` accepts a source without a published checksum (its sha256 is printed).
    """
    source = source if source is not None else find_source(name)
    if name in ("", ".", "..") or Path(name).name != name:
        raise ValueError(f"A dataset name must be a plain folder name, not {name!r}.")

    data_dir = Path(data_dir).expanduser()
    target = data_dir / name
    local_copy = _existing_local_copy(from_path, source) if from_path is not None else None
    _clear_leftovers(data_dir, name, target, progress)
    _refuse_existing(target, force)
    _refuse_unverified(name, source, local_copy, allow_unverified)

    work_dir = _make_work_dir(data_dir, name)
    try:
        staged = work_dir / name
        if progress:
            size = f" (about {source.size_megabytes:,} MB)" if source.size_megabytes and local_copy is None else ""
            action = "Downloading" if local_copy is None else "Installing"
            print(f"{action} {name} from {local_copy or source.url}{size}")
        downloads = work_dir / "downloads"  # what is fetched: the archive, or the files of a source of `files`
        downloads.mkdir()
        if source.files:
            files = _checked_files(source, local_copy, downloads)
        elif local_copy is not None and local_copy.is_dir():
            print(f"{name}: UNVERIFIED install from the folder {local_copy}: no checksum exists for loose files, "
                  f"only for the archive {source.url}.")
            files = _folder_files(local_copy)
        else:
            archive = local_copy or downloads / "archive"
            digests = (_fetch(source.url, archive, source=source, progress=progress) if local_copy is None
                       else _hash_file(archive, name=name, progress=progress))
            _verify(source, digests, local_copy)
            files = _archive_files(archive, source.archive_format)
        _unpack(files, source, staged, origin=str(local_copy or source.url))
        shutil.rmtree(downloads)  # free the space before the old set (if any) is moved aside
        _move_into_place(staged, target, work_dir, force)
    finally:
        # Runs on success, on errors and on KeyboardInterrupt alike: nothing half-written survives.
        shutil.rmtree(work_dir, ignore_errors=True)
    if progress:
        print(f"{name}: installed in {target}")
    return target


def _existing_local_copy(from_path: str | Path, source: DatasetSource) -> Path:
    local_copy = Path(from_path).expanduser()
    wanted = (f"the folder holding the files of {source.url}" if source.files
              else f"the archive fetched from {source.url}, or the folder it was unpacked into")
    if not local_copy.exists():
        raise FileNotFoundError(f"{local_copy} does not exist; give {wanted}.")
    return local_copy


def _refuse_existing(target: Path, force: bool) -> None:
    if (target.exists() or target.is_symlink()) and not force:
        raise FileExistsError(f"{target} already exists; to replace it, pass --force (force=True in Python); "
                              f"the old folder is kept until the new one is complete.")


def _refuse_unverified(name: str, source: DatasetSource, local_copy: Path | None, allow_unverified: bool) -> None:
    if allow_unverified:
        return
    if local_copy is not None and local_copy.is_dir() and not source.files:  # files are checked one by one
        raise UnverifiedSourceError(
            f"{local_copy} is a folder, and only the archive {source.url} has a published checksum, so "
            f"sr_teach cannot tell whether the files in a folder are the right ones. Give that archive itself "
            f"to --from (from_path in Python), or, if you trust the folder, pass --allow-unverified (allow_unverified=True in Python)."
        )
    if not source.is_verified:
        raise UnverifiedSourceError(
            f"No checksum is published for {name} ({source.url}), so sr_teach cannot tell a correct archive "
            f"from a corrupt or tampered one. If you trust that address, pass --allow-unverified "
            f"(allow_unverified=True in Python); the sha256 of the archive is printed so it can be recorded "
            f"in sr_teach/tools/sources.py."
        )


def _make_work_dir(data_dir: Path, name: str) -> Path:
    """A hidden folder for the work in progress, inside DATA_DIR (created if needed)."""
    if data_dir.exists() and not data_dir.is_dir():
        raise NotADirectoryError(f"The data directory {data_dir} is a file, not a folder; choose another with "
                                 f"--data-dir DIR or SR_TEACH_DATA (data_dir in Python).")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # A dot-folder next to the target: invisible to the dataset listing, and on the same file
        # system, so renaming the finished folder into place is atomic.
        return Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=data_dir))
    except OSError as error:
        raise DownloadError(
            f"Cannot write into the data directory {data_dir} ({error.strerror or error}); make it writable, "
            f"or choose another with --data-dir DIR or SR_TEACH_DATA (data_dir in Python)."
        ) from error


def _clear_leftovers(data_dir: Path, name: str, target: Path, progress: bool) -> None:
    """Delete the work folders of killed downloads of `name`; a set caught mid-swap goes back into place."""
    for leftover in sorted(data_dir.glob(f".{name}.download-*")):
        try:
            age_seconds = time.time() - _newest_modification(leftover)
        except OSError:
            continue  # unreadable: not ours to judge
        if age_seconds < LEFTOVER_SECONDS:
            if progress:
                print(f"Note: {leftover} belongs to another download of {name}, running or interrupted in the "
                      f"last hour; delete it if none is running.")
            continue
        previous = leftover / "previous"
        if (previous.exists() or previous.is_symlink()) and not (target.exists() or target.is_symlink()):
            previous.rename(target)  # killed between moving the old set aside and the new one in
            print(f"{name}: put back {target}, which an interrupted download had moved into {leftover}")
        shutil.rmtree(leftover, ignore_errors=True)
        if progress:
            print(f"Removed {leftover}, left by an interrupted download of {name}")


def _newest_modification(folder: Path) -> float:
    """The latest modification time in `folder`, itself included: when a download last wrote there."""
    newest = folder.stat().st_mtime
    for root, _, files in os.walk(folder):
        for entry in (root, *(os.path.join(root, file) for file in files)):
            newest = max(newest, os.lstat(entry).st_mtime)
    return newest


def _offline_hint(source: DatasetSource, url: str) -> str:
    fetched = f"the folder {source.url} with its {len(source.files)} files (or a clone)" if source.files else url
    return (f"If this machine cannot reach it, fetch {fetched} on another machine, copy it here and run "
            f"{_from_command(source)}; checksums are checked the same way.")


def _from_command(source: DatasetSource) -> str:
    """The command that installs the set from a copy fetched by hand: its archive, or the folder of its files."""
    given = "FOLDER" if source.files else "FILE"
    return f"`sr-teach download {source.name} --from {given}` (from_path={given} in Python)"


class _Digests:
    """The sha256 and md5 of a stream of bytes, fed chunk by chunk, and its length."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.byte_count = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.md5.update(chunk)
        self.byte_count += len(chunk)


def _fetch(url: str, destination: Path, *, source: DatasetSource, progress: bool) -> _Digests:
    """Stream `url` into `destination`, hashing the bytes as they arrive."""
    digests = _Digests()
    expected: int | None = None
    request = urllib.request.Request(url, headers={"User-Agent": "sr_teach dataset download"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response, destination.open("wb") as file:
            length_header = response.headers.get("Content-Length")
            expected = int(length_header) if length_header and length_header.isdigit() else None
            _stream(response, digests, _progress_bar(expected, source.name) if progress else None, file.write)
    except urllib.error.HTTPError as error:  # before URLError: it is a subclass
        error.close()
        raise DownloadError(f"{url} answered HTTP {error.code} ({error.reason}). "
                            f"{_offline_hint(source, url)}") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"Could not reach {url}: {error.reason}. {_offline_hint(source, url)}") from error
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, a full disk
        raise DownloadError(
            f"Downloading {url} failed after {digests.byte_count:,} bytes: {error!r}. {_offline_hint(source, url)}"
        ) from error
    # http.client returns a short body without complaint when the server hangs up early, so the
    # Content-Length promise is checked here; the checksum would catch it too, where there is one.
    if expected is not None and digests.byte_count != expected:
        raise DownloadError(f"The download of {url} stopped after {digests.byte_count:,} of {expected:,} bytes (the "
                            f"connection was closed). Try again. {_offline_hint(source, url)}")
    return digests


def _hash_file(path: Path, *, name: str, progress: bool) -> _Digests:
    """Hash an archive fetched by hand, where it lies: no copy of a 3.5 GB file."""
    digests = _Digests()
    with path.open("rb") as file:
        _stream(file, digests, _progress_bar(path.stat().st_size, name) if progress else None)
    return digests


def _stream(source: BinaryIO, digests: _Digests, bar: tqdm | None, write: Callable[[bytes], Any] | None = None) -> None:
    """Read `source` to its end a chunk at a time, hashing each chunk (and writing it, with `write`)."""
    try:
        while chunk := source.read(CHUNK_BYTES):
            if write is not None:
                write(chunk)
            digests.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total_bytes: int | None, name: str) -> tqdm | None:
    """A byte-counting bar when tqdm is installed (it is optional), else None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def _verify(
    source: DatasetSource, digests: _Digests, local_copy: Path | None = None, file: SourceFile | None = None
) -> None:
    """Raise ChecksumError unless the published checksums of the archive (or of `file`, one of the source's
    `files`) match the bytes downloaded (or read from `local_copy`)."""
    actual = {"sha256": digests.sha256.hexdigest(), "md5": digests.md5.hexdigest()}
    published = {"sha256": source.sha256, "md5": source.md5} if file is None else {"sha256": file.sha256}
    url, what = (source.url, f"published for the {source.name} archive") if file is None else (
        file.url, f"recorded for {file.name} of {source.name}")  # the file's sha256 at a pinned commit
    origin = url if local_copy is None else str(local_copy)
    for algorithm, expected in published.items():
        if expected is None or actual[algorithm] == expected:
            continue
        if local_copy is None:
            advice = "The download is corrupt, or the file on the server changed. Try again; if it persists, report it"
        else:
            advice = f"It is another file, or an incomplete copy: fetch {url} again and rerun {_from_command(source)}"
        raise ChecksumError(f"{origin} has {algorithm} {actual[algorithm]}, but {algorithm} {expected} is {what}; "
                            f"nothing was installed. {advice}.")
    if not source.is_verified:
        print(f"{source.name}: UNVERIFIED archive from {origin}: {digests.byte_count:,} bytes, sha256 "
              f"{actual['sha256']}. Record this sha256 in SOURCES so later installs are checked.")


def _checked_member_path(member_name: str) -> PurePosixPath:
    """The member's path, or UnsafeArchiveError when unpacking it could write outside the target folder."""
    # Zips made on Windows may use backslashes; treat them as separators so "..\\" is caught too.
    path = PurePosixPath(member_name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"[A-Za-z]:", member_name) or ".." in path.parts:
        raise UnsafeArchiveError(f"The archive holds the member {member_name!r}, which points outside the folder "
                                 f"it is unpacked into; refusing to unpack it.")
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


def _folder_files(folder: Path) -> Iterator[ArchiveFile]:
    """Each file under the folder an archive was unpacked into, as (path, function returning its bytes).

    The path keeps the folder's own name and the visible folders above it, so a rule such as
    "benchmark/Set5/HR/*.png" matches whether the user names the folder holding benchmark/,
    benchmark/ or benchmark/Set5. Hidden folders (~/.cache) are left out, as in archives.
    """
    above = folder.resolve().parts[1:]  # without the root, "/" or "C:\\"
    hidden = [index for index, part in enumerate(above) if part.startswith(".")]
    prefix = PurePosixPath(*above[hidden[-1] + 1 :] if hidden else above)
    for path in _visible_files(folder):
        yield prefix / PurePosixPath(*path.relative_to(folder).parts), path.read_bytes


def _visible_files(folder: Path) -> Iterator[Path]:
    """Every file under `folder` in a stable order, but none in hidden folders (.git, ~/.cache)."""
    for root, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(subfolder for subfolder in subfolders if not subfolder.startswith("."))
        for file in sorted(files):
            yield Path(root) / file


def _checked_files(source: DatasetSource, local_copy: Path | None, downloads: Path) -> Iterator[ArchiveFile]:
    """Each file of a source of `files` as (its name, function returning its bytes), checked against its sha256:
    fetched from its URL into `downloads`, or found by name under the folder `local_copy` (flat, or a clone)."""
    found: dict[str, list[Path]] = {}
    for path in _visible_files(local_copy) if local_copy is not None else ():
        found.setdefault(path.name, []).append(path)
    for file in source.files:
        if local_copy is None:
            path = downloads / file.name
            digests = _fetch(file.url, path, source=source, progress=False)  # many small files: no bar each
        elif file.name not in found:
            raise DownloadError(f"{local_copy} holds no {file.name}, one of the {len(source.files)} files of "
                                f"{source.url}; give the folder that holds them. Nothing was installed.")
        else:  # in a clone, other sets' folders may hold files of that name: take the right one
            hashed = [(path, _hash_file(path, name=source.name, progress=False)) for path in found[file.name]]
            path, digests = next((pair for pair in hashed if pair[1].sha256.hexdigest() == file.sha256), hashed[0])
        _verify(source, digests, None if local_copy is None else path, file)
        yield PurePosixPath(file.name), path.read_bytes


def _matching_rule(member_path: PurePosixPath, rules: tuple[MemberRule, ...]) -> MemberRule | None:
    # macOS zips carry "__MACOSX/.../._0801.png" shadow files and ".DS_Store"; they match "*.png"
    # but are not images.
    if any(part.startswith(".") or part == "__MACOSX" for part in member_path.parts):
        return None
    return next((rule for rule in rules if member_path.match(rule.pattern)), None)


def _unpack(files: Iterator[ArchiveFile], source: DatasetSource, staged: Path, *, origin: str) -> None:
    """Write the files the source's rules select into `staged`, laid out as HR/ and LR_bicubic/X<s>/; `files`
    come from an archive, the folder it was unpacked into or a source's `files`, named by `origin` in messages."""
    staged.mkdir()
    written: set[Path] = set()
    try:
        for member_path, read_member in files:
            rule = _matching_rule(member_path, source.members)
            if rule is None:
                continue
            stem = member_path.stem
            if rule.name_suffix and stem.endswith(rule.name_suffix):
                stem = stem[: -len(rule.name_suffix)]
            destination = staged / rule.folder / f"{stem}.png"
            if destination in written:
                raise DownloadError(f"Two files of {origin} map onto {rule.folder}/{stem}.png; "
                                    f"the rules for {source.name} need fixing.")
            destination.parent.mkdir(parents=True, exist_ok=True)
            _write_png(read_member(), member_path, destination, origin=origin)
            written.add(destination)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
        raise DownloadError(
            f"{origin} could not be read as a {source.archive_format} archive ({error}); nothing was installed."
        ) from error
    _check_layout(staged, source, origin=origin)


def _write_png(data: bytes, member_path: PurePosixPath, destination: Path, *, origin: str) -> None:
    """Store one image as PNG: PNG bytes as they are, other formats decoded first."""
    if member_path.suffix.lower() == ".png":
        # Checked, because an unverified archive or folder may hold an error page named .png.
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise DownloadError(f"{member_path} in {origin} is not a PNG image; nothing was installed.")
        destination.write_bytes(data)  # byte for byte: no re-encoding of the ground truth
        return
    from PIL import Image  # only the BMP (T91, Classic5, LIVE1) and JPEG (BSD200) sources need decoding

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # OSError: unknown or truncated
        raise DownloadError(
            f"{member_path} in {origin} is not a readable image ({error}); nothing was installed."
        ) from error
    image.save(destination, format="PNG")  # a full disk is an OSError of its own, not a bad image


def _check_layout(staged: Path, source: DatasetSource, *, origin: str) -> None:
    """Fail loudly if the archive did not give the set we expected, instead of installing a wrong one."""
    high_resolution = staged / "HR"
    hr_names = sorted(path.name for path in high_resolution.glob("*.png")) if high_resolution.is_dir() else []
    if not hr_names:
        patterns = ", ".join(rule.pattern for rule in source.members if rule.folder == "HR")
        raise DownloadError(
            f"Nothing in {origin} matched {patterns}, where {source.name}'s HR images lie in {source.url}: "
            f"it is not that archive (or the folder it unpacks into), or the archive's layout changed. "
            f"Nothing was installed."
        )
    if source.expected_image_count is not None and len(hr_names) != source.expected_image_count:
        raise DownloadError(f"{source.name} should have {source.expected_image_count} HR images but {origin} "
                            f"gave {len(hr_names)}. Nothing was installed.")
    for low_resolution in sorted((staged / "LR_bicubic").glob("X*")):
        lr_names = sorted(path.name for path in low_resolution.glob("*.png"))
        if lr_names != hr_names:
            raise DownloadError(
                f"{source.name}: {origin} gave LR_bicubic/{low_resolution.name} without one image per HR image "
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
