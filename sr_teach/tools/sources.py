"""Where each standard image set comes from: its archive (or its files, one URL and checksum each),
the checksum published for it, how its members map onto NAME/HR and NAME/LR_bicubic/X<s>, and whom
to cite on what terms."""

from __future__ import annotations

import difflib
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

# "files": no archive; the set is its list of files, each fetched and checked on its own.
ArchiveFormat = Literal["zip", "tar", "tar.gz", "files"]


def _is_hex(value: str, digits: int) -> bool:
    return re.fullmatch(f"[0-9a-f]{{{digits}}}", value) is not None


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
class SourceFile:
    """One file of a set that is published file by file rather than as one archive."""

    # Pinned to a commit, never a branch: the bytes behind it cannot change, so neither can `sha256`.
    url: str
    # Hex sha256 of the file behind `url`.
    sha256: str

    @property
    def name(self) -> str:
        """The file's name, the end of its URL ("01.png"); the MemberRules see it as the member's path."""
        return PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(self.url).path)).name


@dataclass(frozen=True)
class DatasetSource:
    """Where one set comes from, how to check it, and how its archive maps onto NAME/."""

    # Folder name in the data directory, and the key in SOURCES.
    name: str
    # http(s):// for the public archive, or file:// for a copy you fetched yourself; for a source of
    # `files`, the page that lists them, named in messages (each file has its own URL).
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
    # With archive_format "files" only: the set's files, each checked against its own sha256.
    files: tuple[SourceFile, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.archive_format not in ("zip", "tar", "tar.gz", "files"):
            problems.append(f"unknown archive format {self.archive_format!r}")
        if (self.archive_format == "files") != bool(self.files):
            problems.append('a source lists its files exactly when its archive_format is "files"')
        if self.sha256 is not None and not _is_hex(self.sha256, 64):
            problems.append("sha256 must be 64 lower-case hex digits")
        if self.md5 is not None and not _is_hex(self.md5, 32):
            problems.append("md5 must be 32 lower-case hex digits")
        problems += [f"{file.name}: sha256 must be 64 lower-case hex digits"
                     for file in self.files if not _is_hex(file.sha256, 64)]
        if not self.members:
            problems.append("a source needs at least one MemberRule")
        problems += [f"a rule's folder must be 'HR' or 'LR_bicubic/X<scale>', not {rule.folder!r}"
                     for rule in self.members if not re.fullmatch(r"HR|LR_bicubic/X[1-9][0-9]*", rule.folder)]
        if problems:
            raise ValueError(f"{self.name}: " + "; ".join(problems))

    @property
    def is_verified(self) -> bool:
        """True when a published checksum lets us tell the right archive (or file) from a wrong one."""
        return self.sha256 is not None or self.md5 is not None or bool(self.files)  # each file has a sha256


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


def _github_files(name: str, repository: str, commit: str, folder: str, extension: str,
                  sha256_by_stem: dict[str, str], megabytes: int, citation: str) -> DatasetSource:
    """A set kept file by file in a GitHub repository: <folder>/<stem>.<extension>, fetched at `commit`."""
    raw_folder = f"https://raw.githubusercontent.com/{repository}/{commit}/{folder}"
    return DatasetSource(
        name=name, url=f"https://github.com/{repository}/tree/{commit}/{folder}", sha256=None, md5=None,
        archive_format="files", members=(MemberRule(f"*.{extension}", "HR"),),
        expected_image_count=len(sha256_by_stem), size_megabytes=megabytes, citation=citation, licence=_RESEARCH_ONLY,
        files=tuple(SourceFile(f"{raw_folder}/{stem}.{extension}", sha256) for stem, sha256 in sha256_by_stem.items()),
    )


# The restoration test sets (denoising, JPEG artefact removal) exist only as loose files in the
# repositories of the papers that evaluate on them. Each file is fetched at a pinned commit and checked
# against the sha256 of the file at that commit, recorded in ../shared/datasets/<NAME>/manifest.csv;
# the pinned commit keeps these checksums true. Classic5 and LIVE1 are BMPs there, stored as PNG with
# the same pixels; Set12 and LIVE1_gray are PNGs, installed byte for byte.
_DNCNN_REPOSITORY, _DNCNN_COMMIT = "cszn/DnCNN", "e93b27812d3ff523a3a79d19e5e50d233d7a8d0a"
_FBCNN_REPOSITORY, _FBCNN_COMMIT = "jiaxi-jiang/FBCNN", "54d1831927506b3247e2d4d245abb4f4dab1a1cd"
_DNCNN_CITATION = (
    "Zhang, Zuo, Chen, Meng and Zhang, Beyond a Gaussian denoiser: residual learning of deep CNN for image "
    "denoising, IEEE TIP 2017 (DnCNN)"
)
_LIVE_CITATION = "Sheikh, Wang, Cormack and Bovik, LIVE image quality assessment database release 2"
_SET12_SHA256 = {
    "01": "079229e13faff0a262a9d3eb9a7fa60868203f9b8545de6fb75aadf6fbca4296",
    "02": "576b2b3b6ff4d7e6c8ddccb0df645774f9b986c81219c28e16ba1935990a0b29",
    "03": "92de94d7b8ef9e645546821150eff5c765d0d29666f9bc7d20b61063f35c3305",
    "04": "839fb4770a5a71ab80f18b04a3521b7464451bb3d3e3c6555d538247599fe843",
    "05": "1707ee6fd18fe7d55a1ac7a2cc8818b1e5d5c4a1d6974d8cd4acc9e0f11025fc",
    "06": "02d125470b396b2c63fa428e65920a88e721d5558c54a5c0d25075c934bd0469",
    "07": "83d42aae735bde17c8e92e5c2544b07dd4ff2b77caaa64f5d3bcc34668f79597",
    "08": "f07124a0b4bb493660210c209070aa9c9187e9e085a9f026a51a2b9f57e25f15",
    "09": "764b8a2748cc7ad381cccc047c5e512cb528c197ba86adb83aa339e8932e66c0",
    "10": "18bea4de1634456f5791d16301863fc974401d144cd6afb86f09a6be4620fe54",
    "11": "a8791afbd2af4f977f30c3a9a72a50204264440c27b1f4bb282a085eb680abe1",
    "12": "f6acd12953db8c1f5a0dda53fef4233be37a61702cd22d5be742cf7c039021f2",
}
_CLASSIC5_SHA256 = {
    "baboon": "3a425029590fcb175ca9300107826da5175f884452514cc31a8d023bb029e828",
    "barbara": "409a4b07775ab1b34e88545e3b0b9b5af492062cff27ffa4cffffda8ffe64633",
    "boats": "4d600302c6a7b30a63b0b585da59698f05dcc2b6e0dc41ae0cfcc9b5d4cb3f67",
    "lena": "ae9a378c2640beceb372cbd3593e12b8c58bd0ec366fbd392dd4334660bc0bec",
    "peppers": "cee2991e92c19e4dc53c1ff2a8f163fe08a335435a12fd41cf4ba452512ae1b5",
}
_LIVE1_SHA256 = {
    "bikes": "92d6ced80de60248eb0248a9b37e35ab2fd1fa4516ba249b62fb53ee60b8ff16",
    "building2": "3ca0dd32d728dfcd7cbea9143c27bd61381012d59d120cfa52e8e708ca22ee02",
    "buildings": "c293d6bd98f62101368cc0121f29565acf74bd9d8b8602359956d1c1a0eecdb9",
    "caps": "88efb8921d006e1fabf59fd10ab6368cd45e7dd967b92ecb8f5b9a463ba6696c",
    "carnivaldolls": "95987d74ee5538abbe4f9a35b37830f2f05af22f3282c3fb04e8f4d56850a0a3",
    "cemetry": "1ad007fbd104dc2aeca51f90795b548c4e3b8c98b896ed34ed9838639f8389f2",
    "churchandcapitol": "2acbb0f4b0e6f3d03441dc35959283c31a02f6e63bd94c8ca3495cb8825fff66",
    "coinsinfountain": "ced9f8a400759a929d69e6122c48097219489a861f59af711ebe82f826d7ff97",
    "dancers": "a35a3df3d98d898144ebb0fbd644c3f8ae014ac51bc56aceba095020a56dec3e",
    "flowersonih35": "f8620527d5ef1824f8a3e01db5d1759a07c7c23781682557d85898bcbf915228",
    "house": "995fe5b23e89bd11ce23e2481ca1169766d25e6313887c52fd16b68611419593",
    "lighthouse2": "ee3f2408a34a66d32b17f7802f90ef76b17734f296a050e7e8bb59013d8dc1b0",
    "lighthouse3": "24ef4098a87a1593f21db49efe822307fe9f245055831bb8f6e53550f872ecf3",
    "manfishing": "f198fbbf7a5c480e890c6f4c5e7a3e647b5468e91d84dc6b8af11b0c9be95b59",
    "monarch": "174ef56bab333846b511eb60d85be4edd6696271c59a3f80edcb143400827054",
    "ocean": "0aeeb0b51556bdde39b25d60cdeb018822225c8291217dcd6c3513ced4d517a2",
    "paintedhouse": "9cb3871991e57c0f1a0ca9c1f17dee63fae171881a567ac939c7f349dc8f444d",
    "parrots": "cd937638172d30aeec3c1159ee4eef466c1aea04b92edf45325514ef3bf3cc8a",
    "plane": "a749ebc8d35d0cfbbc623fa2aec4cd408e7ccda064a0fea3c1a914591ca7f83a",
    "rapids": "14da8e1ffc9c3d9e5820242659d7d636f085cd43915cf2683f0a33fdd4f0ed22",
    "sailing1": "e1a601fc2edd88edb9ca202e596185342f768edf7f36cdd222c1e50f77f8172f",
    "sailing2": "0fdf611968983d5f3bdc73b63c19723f8a8c84b2146e99841f69e0369e5ad86c",
    "sailing3": "87343de0103dc45bab354af9d299888548698f31b10824230d98e5386ddb335b",
    "sailing4": "1bcbcc7b43cb3c1d528a3d75f24bd3e510091e6051cd466d703f37178f322e34",
    "statue": "0f41d1a48abd4abd16261327c223f0dec82f67ac865a4c783d29f766cf316d6e",
    "stream": "7499bcad06c016f0dbbd291f3e98ec09c699808c0dacfeb200589cb6eac61cd2",
    "studentsculpture": "af0c90bcee06be5d2042de1f445cf4b828eb9db6eb0c70fb0af6528f332f8465",
    "woman": "9b7fb5ea1a3caeac575099749d4d59d95d3d9316e3cc71ef4466f437f7c409ad",
    "womanhat": "dfe5fd4bb13ecad668399f87efb7c287526957181c7eab44877b02510a54f10f",
}
_LIVE1_GRAY_SHA256 = {
    "bikes": "e7e0dc93c0e18b48c7a91bb82aaba66a5fb9019b4a339bfc4906e17de6ecf771",
    "building2": "2a4a4c99bc60b82a1f6988e85679aae99acd4c69f1dbe1d83388fe4544ffaf6b",
    "buildings": "e2445644eb81d43fd885c47bd429935bea16eff8ea018d9d1fc5e3617ea92a9e",
    "caps": "05c80065d44ce4c2d7377d4baa4beabc8272aecc255da835f6421ed3d8fd1050",
    "carnivaldolls": "683089a830a623aab9e05fd63d196620bb11e4b74e099311f888310cfc0426fb",
    "cemetry": "a30e792679da2964803cc2cf93bfc0372e06e7d7891d68295878333c47327214",
    "churchandcapitol": "333a0310ae1d791b1e34f76b31c02ca8246c1b34cd08eb162b6b9695a97e6ede",
    "coinsinfountain": "d36959365d5ecc8f187e6fee02f64ca1cc4ae78ef4bc226d815ebbd95287e524",
    "dancers": "9c6aac80fcbe2c8091cf181c64325417f2419f1390068fb1150d0c05d5939d20",
    "flowersonih35": "ea099847c8dee1628f974bbf5d928c8ce4d210d5bde8031cf148b256b32a991c",
    "house": "b539870588ac6f32312d8c2b7850707a6d4fecf8471a9a6dea096f6fe931813b",
    "lighthouse2": "2d677883ea4997d6bfc99e5e68650a4d80b550eec1469ba1000144496605a9c5",
    "lighthouse3": "47e24f0bb28ff30a077543438fd1c5399b53008bf98b6902662bfea9b265dfe0",
    "manfishing": "86e04946f2c8573ea90e434e4d71805fe63ddd45f0750de6c4245b912eb07d7f",
    "monarch": "0ada3b69d727e252eafce8ae6b09b1f369f90dc802410edaca693593afa9d656",
    "ocean": "37bb8f3615f17a314950e12a984fcbbd0e3d4b910ebca3f2e1ed3e9cd9dc0b24",
    "paintedhouse": "166db17ff93ef71a3e0529a7b9a38470d7b79e4904f75e1ae049140bf81f88fc",
    "parrots": "5bc0d9cdd174e5b74df749547734e1ff6068481dfeeaea51d7af7666d97e7cef",
    "plane": "0b5d5f9cb52957a33c94a97dd17f961aaa09fd89b4ce55aaa282ff151b00281e",
    "rapids": "1d05591844a4b8f4c049b81ed416ee8b3fbb881953cadffbfc15e73bada1802a",
    "sailing1": "69bc5ab55dc8c278066bc64fd8d6247b4d1bec07138132aa5f0d7c35a3451437",
    "sailing2": "c8a8f9b9c94f4773dc16036b78e1dd6360ebf06d2d16a733f3a9a8a1f7c3799d",
    "sailing3": "961777927886454793b6928a5ec2869ef5ee392a19644fcb011c68f9eb51958d",
    "sailing4": "16088be4161b8f85c079d2f0c63fc66f38f5954b65ac351a836932feadbf5918",
    "statue": "f410fb70fd442204507539eacc19288c3a3dda2e484ea81fa9e8d0942663cf38",
    "stream": "682104b85913667d9da7f42c4c7c64032ab1f0af4de282d2808cd64fe362b993",
    "studentsculpture": "66d4ffe70a5f3301f97b36cf63b05fe9e74ba482012c3ef73b43b22b9c2ba450",
    "woman": "7d4265ad963982eb93a79ae436129ba7c8445e6c46c7d8009a0c10abb0914566",
    "womanhat": "fea79fc06506766d21e00d2e99885fe7ed90b988df5a15854a2b3402ba3e1182",
}


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
    # Gray denoising: the 12 gray images of DnCNN (the same pixels are in cszn/FFDNet, KAIR and DPIR).
    "Set12": _github_files("Set12", _DNCNN_REPOSITORY, _DNCNN_COMMIT, "testsets/Set12", "png", _SET12_SHA256, 1,
                           f"{_DNCNN_CITATION}, whose test copies these are"),
    # Gray JPEG artefact removal: five classic gray test images (baboon, barbara, boats, lena, peppers).
    "Classic5": _github_files("Classic5", _DNCNN_REPOSITORY, _DNCNN_COMMIT, "testsets/classic5", "bmp",
                              _CLASSIC5_SHA256, 1, f"{_DNCNN_CITATION}, whose test copies these are"),
    # JPEG artefact removal: the 29 reference (undistorted) colour images of the LIVE database.
    "LIVE1": _github_files("LIVE1", _DNCNN_REPOSITORY, _DNCNN_COMMIT, "testsets/LIVE1", "bmp", _LIVE1_SHA256, 31,
                           f"{_LIVE_CITATION}; copies from {_DNCNN_CITATION}"),
    # The same 29 images in gray, as FBCNN evaluates gray JPEG artefact removal on them.
    "LIVE1_gray": _github_files(
        "LIVE1_gray", _FBCNN_REPOSITORY, _FBCNN_COMMIT, "testsets/LIVE1_gray", "png", _LIVE1_GRAY_SHA256, 6,
        f"{_LIVE_CITATION}; gray copies from Jiang, Zhang and Timofte, Towards flexible blind JPEG artifacts "
        "removal, ICCV 2021 (FBCNN)",
    ),
}


def find_source(name: str) -> DatasetSource:
    """SOURCES[name], or a ValueError that lists the known names and suggests the nearest one."""
    if name in SOURCES:
        return SOURCES[name]
    same_but_case = [known for known in SOURCES if known.lower() == name.lower()]
    nearest = same_but_case or difflib.get_close_matches(name, SOURCES, n=1)
    suggestion = f" Did you mean {nearest[0]}?" if nearest else ""
    raise ValueError(f"Unknown dataset {name!r}.{suggestion} Known datasets: {', '.join(SOURCES)}.")
