"""Every directory connreset makes is 0700 and every state file 0600 (F10: ``.connreset``,
``/run/connreset`` and new journal parents were 0755, ``lab.json`` 0644)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connreset._support.private import private_dir, private_write
from connreset.lab import host


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_each_missing_parent_is_made_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3


def test_a_state_file_is_0600_and_never_written_through_a_link(tmp_path: Path) -> None:
    private_write(tmp_path / "s.json", "{}")
    assert mode(tmp_path / "s.json") == 0o600
    (tmp_path / "t.json.tmp").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        private_write(tmp_path / "t.json", "{}")
    assert not (tmp_path / "elsewhere").exists()


def test_the_labs_state_directory_lock_and_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "run" / "connreset"
    monkeypatch.setattr(host, "STATE_DIR", state)
    lock = host.HostLock()
    lock.acquire()
    try:
        host.write_state({"owner_pid": os.getpid()})
    finally:
        lock.release()
    assert mode(tmp_path / "run") == 0o700 and mode(state) == 0o700
    assert mode(state / "lab.json") == 0o600 and mode(state / "lab.lock") == 0o600


def test_a_journals_new_parents_are_0700(tmp_path: Path) -> None:
    from connreset.runs.journal import check_path

    check_path(tmp_path / ".connreset" / "runs" / "x.json", given=False)
    assert mode(tmp_path / ".connreset") == 0o700 and mode(tmp_path / ".connreset" / "runs") == 0o700
