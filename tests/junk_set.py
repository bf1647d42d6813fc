"""The files that phones, NAS boxes, sync tools and browsers leave in a shared folder:
DESIGN.md's built-in ignores, as those tools name them. Hopper must leave them where they are."""

# The built-in ignores of DESIGN.md, as the tools that leave them name them.
JUNK = {
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "DCIM/._IMG_0001.JPG": b"\x00\x05\x16\x07AppleDouble",
    ".AppleDouble/IMG_0001.JPG": b"resource fork",
    ".localized": b"",
    "@eaDir/IMG_0001.JPG/SYNOPHOTO_THUMB_XL.jpg": b"\xff\xd8\xff\xe0 synology thumb",
    "#recycle/old.jpg": b"recycled",
    "#snapshot/daily/a.txt": b"snapshot",
    "Thumbs.db": b"windows thumbs",
    "desktop.ini": b"[.ShellClassInfo]",
    ".stfolder/.keep": b"",
    ".stversions/a~20240101.txt": b"old version",
    ".stignore": b"*.tmp",
    ".sync/ID": b"resilio",
    "~syncthing~a.jpg.tmp": b"partial sync",
    ".syncthing.a.jpg.tmp": b"partial sync",
    ".Trash-1000/files/x.jpg": b"trashed",
    "lost+found/#1234": b"fsck",
    "movie.mp4.part": b"firefox download",
    "album.zip.partial": b"partial",
    "photo.jpg.crdownload": b"chrome download",
    "doc.pdf.download": b"safari download",
    "scratch.tmp": b"temp",
    ".~lock.report.odt#": b"libreoffice lock",
    "~$report.docx": b"word owner file",
}
