"""organize: layout rendering, name safety, no-replace placement inside the root."""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os

import pytest

from hopper.app.library import organize
from hopper.app.library.identify import Identity

PHOTO = Identity(sha256="ab" * 32, size=3, mime="image/jpeg", kind="image",
                 taken_at=dt.datetime(2018, 3, 2, 9, 8, 7), taken_at_source="exif:DateTimeOriginal")


def test_layout_renders_kind_year_month_and_name():
    assert str(organize.render("{kind}/{year}/{month}/{name}", PHOTO, "IMG_1.jpg")) == \
        "image/2018/03/IMG_1.jpg"


@pytest.mark.parametrize("layout", ["../{name}", "/etc/{name}", "{kind}/../../{name}",
                                    "{kind}//{name}", "{unknown}/{name}"])
def test_layout_that_would_leave_the_root_is_refused(layout):
    with pytest.raises(organize.UnsafeName):
        organize.render(layout, PHOTO, "a.jpg")


@pytest.mark.parametrize("name", ["..", "...", "..\\..\\x.txt", "a/../b", ""])
def test_names_crafted_to_escape_are_refused(name):
    with pytest.raises(organize.UnsafeName):
        organize.sanitize_name(name)


def test_undecodable_name_is_refused():
    with pytest.raises(organize.UnsafeName, match="UTF-8"):
        organize.sanitize_name(os.fsdecode(b"caf\xe9.jpg"))


def test_names_are_sanitized():
    assert organize.sanitize_name(".hidden.jpg") == "hidden.jpg"
    assert organize.sanitize_name("a\nb\tc.txt") == "a_b_c.txt"
    long = organize.sanitize_name("x" * 400 + ".jpeg")
    assert long.endswith(".jpeg") and len(long.encode()) <= organize.MAX_NAME_BYTES


def test_collision_gets_a_suffix_and_never_overwrites(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "a.txt").write_text("existing")
    placed = []
    for content in ("one", "two"):
        src = tmp_path / f"src-{content}"
        src.write_text(content)
        fd = os.open(src, os.O_RDONLY)
        try:
            placed.append(organize.place(fd, src, folder, "a.txt", content * 32))
        finally:
            os.close(fd)
    assert [p.name for p in placed] == ["a-1.txt", "a-2.txt"]
    assert (folder / "a.txt").read_text() == "existing"
    assert [p.read_text() for p in placed] == ["one", "two"]


def test_copy_across_filesystems_goes_through_a_temp_name(tmp_path, monkeypatch):
    folder = tmp_path / "lib"
    folder.mkdir()
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    monkeypatch.setattr(organize, "_link_by_name", refuse_cross_device)
    fd = os.open(src, os.O_RDONLY)
    try:
        final = organize.place(fd, src, folder, "src.bin",
                               hashlib.sha256(src.read_bytes()).hexdigest())
    finally:
        os.close(fd)
    assert final.read_bytes() == src.read_bytes()
    assert final.stat().st_mtime_ns == src.stat().st_mtime_ns
    assert sorted(p.name for p in folder.iterdir()) == ["src.bin"]   # no temp left


def refuse_cross_device(source, target):
    """The inbox is on another filesystem: hard links from it are refused."""
    raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))


def test_symlinked_folder_inside_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "lib", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "image")
    with pytest.raises(organize.UnsafeName, match="symlink"):
        organize.ensure_folder(root, organize.check_relative("image/2018/03"))
    assert not list(outside.iterdir())
