"""Atomic writes: ordinary permissions (umask honoured), no temporary file left on error."""

from __future__ import annotations

import os
import stat

import pytest

from smoothcert.runs.atomic import atomic_writer, write_bytes_atomic, write_text_atomic


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_open_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "reference", "w") as fh:
            fh.write("x")
        write_text_atomic(tmp_path / "atomic", "x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "reference").stat().st_mode) == 0o666 & ~umask


def test_error_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"new, half written")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_text_atomic(tmp_path / "nope" / "x.txt", "x")
    assert list(tmp_path.iterdir()) == []
