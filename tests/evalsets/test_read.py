"""Reading generated sets back: which sets exist, in which order, and their files' labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsets import read

pytestmark = pytest.mark.unit


def write_set(root: Path, name: str, rows: list[str]) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "labels.csv").write_text("file,label,index,tags\n" + "".join(f"{r}\n" for r in rows))


def test_find_sets_in_the_generator_order_then_others(tmp_path: Path) -> None:
    for name in ("zzz", "lowres", "clean", "extra"):
        write_set(tmp_path, name, [])
    (tmp_path / "not_a_set").mkdir()
    assert read.find_sets(tmp_path, None) == ["clean", "lowres", "extra", "zzz"]
    assert read.find_sets(tmp_path, ["lowres"]) == ["lowres"]
    with pytest.raises(SystemExit, match=r"python -m evalsets\.make"):
        read.find_sets(tmp_path, ["phone"])
    with pytest.raises(SystemExit, match="no evaluation sets"):
        read.find_sets(tmp_path / "not_a_set", None)


def test_load_set_reads_labels_and_tags(tmp_path: Path) -> None:
    write_set(tmp_path, "phone", ["00000.jpg,7,12,exif=6 quality=80", "00001.jpg,1,3,"])
    first, second = read.load_set(tmp_path / "phone")
    assert first == read.Sample(tmp_path / "phone" / "00000.jpg", 7, {"exif": "6", "quality": "80"})
    assert (second.label, second.tags) == (1, {})
