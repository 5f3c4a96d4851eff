"""Where each standard image set comes from: its archive, the checksum published for it, how its
members map onto NAME/HR and NAME/LR_bicubic/X<s>, and whom to cite on what terms."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

ArchiveFormat = Literal["zip", "tar", "tar.gz"]


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
        problems = []
        if self.archive_format not in ("zip", "tar", "tar.gz"):
            problems.append(f"unknown archive format {self.archive_format!r}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            problems.append("sha256 must be 64 lower-case hex digits")
        if self.md5 is not None and not re.fullmatch(r"[0-9a-f]{32}", self.md5):
            problems.append("md5 must be 32 lower-case hex digits")
        if not self.members:
            problems.append("a source needs at least one MemberRule")
        problems += [f"a rule's folder must be 'HR' or 'LR_bicubic/X<scale>', not {rule.folder!r}"
                     for rule in self.members if not re.fullmatch(r"HR|LR_bicubic/X[1-9][0-9]*", rule.folder)]
        if problems:
            raise ValueError(f"{self.name}: " + "; ".join(problems))

    @property
    def is_verified(self) -> bool:
        """True when a published checksum lets us tell the right archive from a wrong one."""
        return self.sha256 is not None or self.md5 is not None


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


def _edsr_benchmark(name: str, folder: str, count: int, citation: str, licence: str = _RESEARCH_ONLY) -> DatasetSource:
    """A set of EDSR's benchmark.tar: benchmark/<folder>/HR/<image>.png and LR_bicubic/X<s>/<image>x<s>.png."""
    low_resolution = tuple(
        MemberRule(f"benchmark/{folder}/LR_bicubic/X{s}/*x{s}.png", f"LR_bicubic/X{s}", name_suffix=f"x{s}")
        for s in (2, 3, 4)
    )
    return DatasetSource(
        name=name, url=_EDSR_BENCHMARK_URL, sha256=None, md5=_EDSR_BENCHMARK_MD5, archive_format="tar",
        members=(MemberRule(f"benchmark/{folder}/HR/*.png", "HR"), *low_resolution), expected_image_count=count,
        size_megabytes=_EDSR_BENCHMARK_MEGABYTES, citation=citation, licence=licence,
    )


def _div2k(name: str, split: str, sha256: str, md5: str, count: int, megabytes: int) -> DatasetSource:
    """A DIV2K split's HR zip: DIV2K_<split>_HR/<image>.png."""
    return DatasetSource(
        name=name, url=f"https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_{split}_HR.zip", sha256=sha256, md5=md5,
        archive_format="zip", members=(MemberRule(f"DIV2K_{split}_HR/*.png", "HR"),), expected_image_count=count,
        size_megabytes=megabytes, citation=_DIV2K_CITATION, licence="DIV2K: academic research use only",
    )


SOURCES: dict[str, DatasetSource] = {
    "Set5": _edsr_benchmark("Set5", "Set5", 5, "Bevilacqua, Roumy, Guillemot and Alberi-Morel, Low-complexity "
                            "single-image super-resolution based on nonnegative neighbor embedding, BMVC 2012"),
    "Set14": _edsr_benchmark("Set14", "Set14", 14, "Zeyde, Elad and Protter, On single image scale-up using "
                             "sparse-representations, Curves and Surfaces 2010"),
    # EDSR calls it B100: the 100 test images of BSDS300
    "BSD100": _edsr_benchmark("BSD100", "B100", 100, "Martin, Fowlkes, Tal and Malik, A database of human segmented "
                              "natural images, ICCV 2001",
                              licence="Berkeley Segmentation Dataset: non-commercial research and educational use"),
    "Urban100": _edsr_benchmark("Urban100", "Urban100", 100, "Huang, Singh and Ahuja, Single image super-resolution "
                                "from transformed self-exemplars, CVPR 2015"),
    # The 91 training images of Yang et al., as the SRCNN authors ship them (SRCNN/Train/*.bmp) in
    # their Caffe training code. UNVERIFIED: we found no checksum we can cite. A sha256 for this file,
    # 001146419f7acfb12a3e7929c8acd5de88a08d687d6881085f81321ad6982b1a (19,619,221 bytes), appears in
    # public code whose repository we could not identify; compare it with the one printed after an
    # --allow-unverified download before recording it here.
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
    # DIV2K's HR images only (sr_teach makes its own LR with the MATLAB-compatible resize): 800 for
    # training, and the 100 validation images (0801-0900), the usual DIV2K evaluation set, 8x smaller.
    # sha256 from tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt (3,530,603,713 and
    # 448,993,893 bytes); md5 from Coloquinte/torchSR, torchsr/datasets/div2k.py.
    "DIV2K": _div2k("DIV2K", "train", "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
                    "bdc2d9338d4e574fe81bf7d158758658", 800, 3531),
    "DIV2K_valid": _div2k("DIV2K_valid", "valid", "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
                          "9fcdda83005c5e5997799b69f955ff88", 100, 449),
}


def find_source(name: str) -> DatasetSource:
    """SOURCES[name], or a ValueError that lists the known names and suggests the nearest one."""
    if name in SOURCES:
        return SOURCES[name]
    same_but_case = [known for known in SOURCES if known.lower() == name.lower()]
    nearest = same_but_case or difflib.get_close_matches(name, SOURCES, n=1)
    suggestion = f" Did you mean {nearest[0]}?" if nearest else ""
    raise ValueError(f"Unknown dataset {name!r}.{suggestion} Known datasets: {', '.join(SOURCES)}.")
