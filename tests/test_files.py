"""Atomic output files: complete or absent, and with the usual permissions."""
from __future__ import annotations

import os

import pytest

from workbench.core.files import atomic_write


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target) as handle:
        handle.write("done\n")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_text() == "done\n"
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
