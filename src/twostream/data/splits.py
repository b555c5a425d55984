"""Train/test splits: UCF-101 and HMDB-51 read as published, plus a folder per class or a CSV.

A video id is its path relative to the data set root without extension (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``),
the same id ``twostream extract`` gives the video's cache unit.
"""

from __future__ import annotations

import csv
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..video import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Sample:
    video_id: str
    label: int
    cache: str = ""  # the cache holding this video, when not the task's (a task drawing from two data sets)


# train: what the streams learn from; test: what they are scored on; fusion: training videos held out of
# the streams' training (by group) to fit the fusion on scores the streams did not train on
PARTS = ("train", "test", "fusion")
_GROUP = re.compile(r"_g(\d+)_c\d+$")  # UCF-101's v_<Class>_g<GG>_c<CC>: clips of one group share a scene


def video_group(video_id: str) -> int | None:
    """The group of a UCF-101 video id (``.../v_ApplyEyeMakeup_g08_c01`` -> 8), None for other names."""
    m = _GROUP.search(video_id)
    return int(m.group(1)) if m else None


@dataclass
class Split:
    name: str
    classes: list[str]
    train: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    fusion: list[Sample] = field(default_factory=list)

    def samples(self, part: str) -> list[Sample]:
        if part not in PARTS:
            raise UserError(f"split part must be one of {', '.join(PARTS)}, got {part!r}")
        return getattr(self, part)

    def hold_out(self, groups: list[int]) -> Split:
        """The training videos of ``groups`` moved to the ``fusion`` part (never seen by the streams)."""
        missing = [s.video_id for s in self.train if video_group(s.video_id) is None]
        if missing:
            raise UserError(f"{self.name}: fusion groups need video names with a group (v_<Class>_gGG_cCC), "
                            f"e.g. not {missing[0]!r}")
        held = set(groups)
        train = [s for s in self.train if video_group(s.video_id) not in held]
        fusion = [s for s in self.train if video_group(s.video_id) in held]
        if not fusion or not train:
            raise UserError(f"{self.name}: holding out groups {sorted(held)} leaves {len(train)} training and "
                            f"{len(fusion)} fusion videos; both must be > 0")
        return Split(self.name, self.classes, train, self.test, fusion)

    def restrict(self, classes: list[str]) -> Split:
        """Only the videos of ``classes`` (kept in this split's class order), labels renumbered."""
        unknown = [c for c in classes if c not in self.classes]
        if unknown:
            raise UserError(f"{self.name}: no classes {unknown[:5]} (it has {len(self.classes)}: "
                            f"{', '.join(self.classes[:5])}, ...)")
        kept = [c for c in self.classes if c in set(classes)]
        new = {self.classes.index(c): i for i, c in enumerate(kept)}

        def keep(samples: list[Sample]) -> list[Sample]:
            return [Sample(s.video_id, new[s.label], s.cache) for s in samples if s.label in new]

        return Split(f"{self.name}[{len(kept)} classes]", kept, keep(self.train), keep(self.test), keep(self.fusion))

    def with_training_videos_of(self, other: Split, cache: str) -> Split:
        """This split plus ``other``'s training videos (read from ``cache``) as classes of their own, after
        this split's (the paper's HMDB-51 set-up (c): HMDB-51 plus non-overlapping UCF-101 classes)."""
        shared = sorted(set(self.classes) & set(other.classes))
        if shared:
            raise UserError(f"{self.name} and {other.name} share classes {shared[:5]}: restrict one of them")
        offset = len(self.classes)
        added = [Sample(s.video_id, s.label + offset, cache) for s in other.train]
        return Split(f"{self.name}+{other.name}", self.classes + other.classes, self.train + added, self.test,
                     self.fusion)


FOLDS = (1, 2, 3)  # the published splits of UCF-101 and HMDB-51


def check_fold(fold: int, name: str = "fold") -> None:
    if fold not in FOLDS:
        raise UserError(f"{name} must be 1..3, got {fold}")


def _lines(path: Path) -> list[str]:
    # The official files have CRLF endings and trailing spaces: strip both, drop blank lines.
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _video_id(path: str) -> str:
    p = Path(path.replace("\\", "/"))
    return p.with_suffix("").as_posix() if p.suffix.lower() in VIDEO_EXTENSIONS else p.as_posix()


def ucf101_split(root: str | Path, fold: int = 1) -> Split:
    """UCF-101 from ``classInd.txt``, ``trainlist0{fold}.txt`` and ``testlist0{fold}.txt`` in ``root``.

    The label comes from the class folder of each path, so ``HandstandPushups/v_HandStandPushups_g01_c01.avi``
    (the published case mismatch) is class ``HandstandPushups``.
    """
    check_fold(fold)
    root = Path(root)
    classes: list[str] = []
    for line in _lines(root / "classInd.txt"):
        index, name = line.split()
        if int(index) != len(classes) + 1:
            raise UserError(f"{root / 'classInd.txt'}: class indices must run 1, 2, ...; got {index}")
        classes.append(name)
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    split = Split(f"ucf101/{fold}", classes)
    for part, fname in (("train", f"trainlist0{fold}.txt"), ("test", f"testlist0{fold}.txt")):
        for line in _lines(root / fname):
            fields = line.split()
            vid = _video_id(fields[0])
            folder = vid.split("/")[0].lower()
            if folder not in lookup:
                raise UserError(f"{root / fname}: class folder of {fields[0]!r} is not in classInd.txt")
            label = lookup[folder]
            if len(fields) > 1 and int(fields[1]) != label + 1:
                raise UserError(f"{root / fname}: {fields[0]} has label {fields[1]} but its folder is "
                                 f"class {label + 1}")
            split.samples(part).append(Sample(vid, label))
    return split


def hmdb51_split(root: str | Path, fold: int = 1) -> Split:
    """HMDB-51 from the ``<class>_test_split{fold}.txt`` files in ``root`` (1 = train, 2 = test, 0 = unused)."""
    check_fold(fold)
    files = sorted(Path(root).glob(f"*_test_split{fold}.txt"))
    if not files:
        raise UserError(f"{root}: no HMDB-51 files *_test_split{fold}.txt")
    classes = [f.name[: -len(f"_test_split{fold}.txt")] for f in files]
    split = Split(f"hmdb51/{fold}", classes)
    for label, (cls, path) in enumerate(zip(classes, files)):
        for line in _lines(path):
            name, tag = line.split()
            if tag not in ("0", "1", "2"):
                raise UserError(f"{path}: tag must be 0, 1 or 2, got {tag!r} for {name}")
            if tag != "0":
                split.samples("train" if tag == "1" else "test").append(Sample(f"{cls}/{_video_id(name)}", label))
    return split


def _hash_part(video_id: str, test_fraction: float) -> str:
    # Deterministic on every machine and stable when videos are added: the id's hash decides.
    return "test" if zlib.crc32(video_id.encode()) % 10_000 < test_fraction * 10_000 else "train"


def folder_split(root: str | Path, test_fraction: float = 0.3) -> Split:
    """A folder per class (``root/<class>/<video>``, searched recursively): classes sorted by name;
    each video goes to test with probability ``test_fraction`` by a hash of its id (deterministic)."""
    root = Path(root)
    if not 0 <= test_fraction < 1:
        raise UserError(f"test_fraction must be in [0, 1), got {test_fraction}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UserError(f"{root}: no class folders")
    split = Split(f"folder:{root.name}", classes)
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                vid = p.relative_to(root).with_suffix("").as_posix()
                split.samples(_hash_part(vid, test_fraction)).append(Sample(vid, label))
    return split


def csv_split(path: str | Path, test_fraction: float = 0.3) -> Split:
    """A CSV of ``path,label[,split]`` (header optional; split is train or test, else by hash as in
    ``folder_split``). Classes are the sorted distinct labels."""
    path = Path(path)
    rows = [r for r in csv.reader(path.read_text().splitlines()) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    for n, r in enumerate(rows, 1):
        if len(r) not in (2, 3) or (len(r) == 3 and r[2].strip() not in ("train", "test", "")):
            raise UserError(f"{path}: row {n} must be path,label[,train|test], got {r}")
    classes = sorted({r[1].strip() for r in rows})
    split = Split(f"csv:{path.name}", classes)
    index = {c: i for i, c in enumerate(classes)}
    for r in rows:
        vid = _video_id(r[0].strip())
        part = r[2].strip() if len(r) == 3 and r[2].strip() else _hash_part(vid, test_fraction)
        split.samples(part).append(Sample(vid, index[r[1].strip()]))
    return split


KINDS = ("ucf101", "hmdb51", "folder", "csv")
FOLDED_KINDS = ("ucf101", "hmdb51")  # the kinds with published folds 1..3


def load_split(kind: str, path: str | Path, fold: int = 1) -> Split:
    """One entry point for every kind: ``ucf101`` / ``hmdb51`` (split-file folder, fold 1..3),
    ``folder`` (a folder per class) or ``csv``."""
    if kind == "ucf101":
        return ucf101_split(path, fold)
    if kind == "hmdb51":
        return hmdb51_split(path, fold)
    if kind == "folder":
        return folder_split(path)
    if kind == "csv":
        return csv_split(path)
    raise UserError(f"split kind must be one of {', '.join(KINDS)}, got {kind!r}")


def available_folds(kind: str, path: str | Path) -> list[int]:
    """The folds whose files are present (UCF-101, HMDB-51); [1] for the other kinds."""
    path = Path(path)
    if kind == "ucf101":
        return [f for f in FOLDS if (path / f"trainlist0{f}.txt").exists()]
    if kind == "hmdb51":
        return [f for f in FOLDS if any(path.glob(f"*_test_split{f}.txt"))]
    return [1]


def missing_videos(samples: list[Sample], cache: str | Path) -> list[str]:
    """Ids of the listed videos that have no complete unit in ``cache``."""
    from ..cache import is_complete

    return [s.video_id for s in samples if not is_complete(s.cache or cache, s.video_id)]
