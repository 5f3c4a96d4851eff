"""Fetch the standard super-resolution image sets into the layout sr_teach reads.

    DATA_DIR/NAME/HR/<image>.png
    DATA_DIR/NAME/LR_bicubic/X<s>/<image>.png    (only where the archive ships LR images)

The sets are research images without a licence that lets us redistribute them, so the project never
commits them; this module fetches them from the archives their authors (or well-known mirrors)
publish. `download_dataset` works in this order, and each step has a reason:

1. It refuses early (unknown name, NAME already there, no checksum to check against), so nothing
   is downloaded in vain.
2. It streams the archive into a hidden temporary folder *inside* DATA_DIR, hashing the bytes as
   they arrive. Same file system as the destination, so the final rename is atomic.
3. It compares that hash with the one published for the archive *before* opening it: a truncated,
   corrupt or tampered archive is never unpacked.
4. It unpacks only the members the source's `MemberRule`s ask for, rejects archives with absolute
   or `..` paths, and writes every image as PNG.
5. It renames the finished folder into place. On any error, Ctrl-C included, the temporary folder
   is deleted and DATA_DIR is left exactly as it was.

No internet on this machine? Fetch the archive some other way and hand it over as a file:// URL;
the checksum is still checked:

    from dataclasses import replace
    download_dataset("Set5", data_dir, source=replace(SOURCES["Set5"], url=Path("benchmark.tar").resolve().as_uri()))
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
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tqdm import tqdm

# Long enough for a slow university server to answer, short enough that a dead one fails in a lesson.
TIMEOUT_SECONDS = 60
# 1 MiB reads: few Python-level iterations for a 3.5 GB archive, little memory.
CHUNK_BYTES = 1 << 20

ArchiveFormat = Literal["zip", "tar", "tar.gz"]
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


@dataclass(frozen=True)
class MemberRule:
    """One line of a source's unpacking plan: which archive members go to which folder of NAME/."""

    # Glob matched against the *end* of a member's path, like PurePosixPath.match: "Train/*.bmp"
    # matches "SRCNN/Train/t1.bmp", so a rule need not know an archive's top folder. `*` stops at "/".
    pattern: str
    # "HR" or "LR_bicubic/X<s>": the only two places the data layout has.
    folder: str
    # Cut from the end of the file's stem: EDSR names its LR files "babyx2.png", the layout wants
    # the same name as the HR image, "baby.png".
    name_suffix: str = ""


@dataclass(frozen=True)
class DatasetSource:
    """Where one set comes from, how to check it, and how its archive maps onto NAME/."""

    # Folder name in the data directory, and the key in SOURCES.
    name: str
    # http(s):// for the public archive, or file:// for a copy you fetched yourself.
    url: str
    # Hex sha256 of the archive as published by a third party we cite; None when nobody publishes one.
    sha256: str | None
    # Hex md5, weaker than sha256 but still catches corruption; used where only an md5 is published.
    md5: str | None
    archive_format: ArchiveFormat
    members: tuple[MemberRule, ...]
    # Number of HR images the set must end up with: catches a mirror whose layout changed.
    expected_image_count: int | None
    # Printed before a download starts, so nobody is surprised by 3.5 GB on a laptop.
    size_megabytes: int | None
    # Who to cite, and on what terms the images may be used.
    citation: str
    licence: str

    def __post_init__(self) -> None:
        assert self.archive_format in ("zip", "tar", "tar.gz"), f"unknown archive format {self.archive_format!r}"
        assert self.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", self.sha256), "sha256: 64 lower-case hex digits"
        assert self.md5 is None or re.fullmatch(r"[0-9a-f]{32}", self.md5), "md5: 32 lower-case hex digits"
        assert self.members, f"{self.name}: a source needs at least one MemberRule"
        for rule in self.members:
            assert re.fullmatch(r"HR|LR_bicubic/X[1-9][0-9]*", rule.folder), (
                f"{self.name}: a rule's folder must be 'HR' or 'LR_bicubic/X<scale>', not {rule.folder!r}"
            )

    @property
    def is_verified(self) -> bool:
        """True when a published checksum lets us tell the right archive from a wrong one."""
        return self.sha256 is not None or self.md5 is not None


def _edsr_benchmark_members(folder: str) -> tuple[MemberRule, ...]:
    """EDSR's benchmark.tar holds benchmark/<folder>/HR/<image>.png and LR_bicubic/X<s>/<image>x<s>.png."""
    high_resolution = MemberRule(f"benchmark/{folder}/HR/*.png", "HR")
    low_resolution = tuple(
        MemberRule(
            f"benchmark/{folder}/LR_bicubic/X{scale}/*x{scale}.png", f"LR_bicubic/X{scale}", name_suffix=f"x{scale}"
        )
        for scale in (2, 3, 4)
    )
    return (high_resolution, *low_resolution)


# Set5, Set14, BSD100 and Urban100 come from one archive, the benchmark pack of EDSR (Lim et al. 2017),
# because it is the only public pack of all four with HR *and* LR_bicubic images and a published
# checksum. Each set downloads the whole 250 MB archive and keeps only its own folder.
# md5 from Coloquinte/torchSR, torchsr/datasets/benchmarks.py (classes Set5, Set14, B100, Urban100);
# no sha256 of this archive is published anywhere we could find.
_EDSR_BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
_EDSR_BENCHMARK_MD5 = "4ace41d33c2384b97e6b320cd0afd6ba"
_EDSR_BENCHMARK_MEGABYTES = 250  # the size EDSR-PyTorch's README gives
_RESEARCH_ONLY = "no explicit licence; research and teaching use, do not redistribute"
_DIV2K_CITATION = (
    "Agustsson and Timofte, NTIRE 2017 challenge on single image super-resolution: dataset and study, CVPRW 2017"
)

SOURCES: dict[str, DatasetSource] = {
    "Set5": DatasetSource(
        name="Set5",
        url=_EDSR_BENCHMARK_URL,
        sha256=None,
        md5=_EDSR_BENCHMARK_MD5,
        archive_format="tar",
        members=_edsr_benchmark_members("Set5"),
        expected_image_count=5,
        size_megabytes=_EDSR_BENCHMARK_MEGABYTES,
        citation="Bevilacqua, Roumy, Guillemot and Alberi-Morel, Low-complexity single-image super-resolution "
        "based on nonnegative neighbor embedding, BMVC 2012",
        licence=_RESEARCH_ONLY,
    ),
    "Set14": DatasetSource(
        name="Set14",
        url=_EDSR_BENCHMARK_URL,
        sha256=None,
        md5=_EDSR_BENCHMARK_MD5,
        archive_format="tar",
        members=_edsr_benchmark_members("Set14"),
        expected_image_count=14,
        size_megabytes=_EDSR_BENCHMARK_MEGABYTES,
        citation="Zeyde, Elad and Protter, On single image scale-up using sparse-representations, "
        "Curves and Surfaces 2010",
        licence=_RESEARCH_ONLY,
    ),
    "BSD100": DatasetSource(
        name="BSD100",
        url=_EDSR_BENCHMARK_URL,
        sha256=None,
        md5=_EDSR_BENCHMARK_MD5,
        archive_format="tar",
        members=_edsr_benchmark_members("B100"),  # EDSR calls it B100: the 100 test images of BSDS300
        expected_image_count=100,
        size_megabytes=_EDSR_BENCHMARK_MEGABYTES,
        citation="Martin, Fowlkes, Tal and Malik, A database of human segmented natural images, ICCV 2001",
        licence="Berkeley Segmentation Dataset: non-commercial research and educational use",
    ),
    "Urban100": DatasetSource(
        name="Urban100",
        url=_EDSR_BENCHMARK_URL,
        sha256=None,
        md5=_EDSR_BENCHMARK_MD5,
        archive_format="tar",
        members=_edsr_benchmark_members("Urban100"),
        expected_image_count=100,
        size_megabytes=_EDSR_BENCHMARK_MEGABYTES,
        citation="Huang, Singh and Ahuja, Single image super-resolution from transformed self-exemplars, CVPR 2015",
        licence=_RESEARCH_ONLY,
    ),
    # The 91 training images of Yang et al., as the SRCNN authors ship them (SRCNN/Train/*.bmp) in
    # their Caffe training code. UNVERIFIED: we found no checksum we can cite. A sha256 for this file,
    # 001146419f7acfb12a3e7929c8acd5de88a08d687d6881085f81321ad6982b1a (19,619,221 bytes), appears in
    # public code whose repository we could not identify; compare it with the one printed after an
    # allow_unverified=True download before recording it here.
    "T91": DatasetSource(
        name="T91",
        url="https://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip",
        sha256=None,
        md5=None,
        archive_format="zip",
        members=(MemberRule("Train/*.bmp", "HR"),),
        expected_image_count=91,
        size_megabytes=20,
        citation="Yang, Wright, Huang and Ma, Image super-resolution via sparse representation, IEEE TIP 2010; "
        "archive from Dong et al., Image super-resolution using deep convolutional networks, TPAMI 2016",
        licence=_RESEARCH_ONLY,
    ),
    # The 200 training images of BSDS300 (disjoint from BSD100, its 100 test images), from Berkeley.
    # They are JPEGs in the archive; we store their decoded pixels as PNG like every other set.
    # sha256 from Chicken20145/ai-assisted-parallel-image-processing, scripts/download_datasets.py
    # (EXPECTED_ARCHIVE_SHA256, same URL); a small third-party project, the only published checksum we found.
    "BSD200": DatasetSource(
        name="BSD200",
        url="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/segbench/BSDS300-images.tgz",
        sha256="a5f7d0e49fe135c75518a3543ced24470156fd69305ae77845dff2a5138652b4",
        md5=None,
        archive_format="tar.gz",
        members=(MemberRule("BSDS300/images/train/*.jpg", "HR"),),
        expected_image_count=200,
        size_megabytes=22,
        citation="Martin, Fowlkes, Tal and Malik, A database of human segmented natural images, ICCV 2001",
        licence="Berkeley Segmentation Dataset: non-commercial research and educational use",
    ),
    # DIV2K's 800 training images, HR only (sr_teach makes its own LR with the MATLAB-compatible resize).
    # sha256 from tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt (3,530,603,713 bytes);
    # md5 from Coloquinte/torchSR, torchsr/datasets/div2k.py.
    "DIV2K": DatasetSource(
        name="DIV2K",
        url="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
        sha256="9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
        md5="bdc2d9338d4e574fe81bf7d158758658",
        archive_format="zip",
        members=(MemberRule("DIV2K_train_HR/*.png", "HR"),),
        expected_image_count=800,
        size_megabytes=3531,
        citation=_DIV2K_CITATION,
        licence="DIV2K: academic research use only",
    ),
    # DIV2K's 100 validation images (0801-0900): the usual DIV2K evaluation set, and 8x smaller.
    # sha256 from tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt (448,993,893 bytes);
    # md5 from Coloquinte/torchSR, torchsr/datasets/div2k.py.
    "DIV2K_valid": DatasetSource(
        name="DIV2K_valid",
        url="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
        sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
        md5="9fcdda83005c5e5997799b69f955ff88",
        archive_format="zip",
        members=(MemberRule("DIV2K_valid_HR/*.png", "HR"),),
        expected_image_count=100,
        size_megabytes=449,
        citation=_DIV2K_CITATION,
        licence="DIV2K: academic research use only",
    ),
}


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
