"""Network namespaces of a test's own (``crssh-*``, ``crdock-*``: never the lab's ``crlab-*``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class Namespaces:
    """Make, remove and list the namespaces named with one prefix."""

    def __init__(self, prefix: str) -> None:
        if prefix == "crlab-" or not _NAME.match(prefix):
            raise ValueError(f"not a test namespace prefix: {prefix!r}")
        self.prefix = prefix

    def _check(self, name: str) -> None:
        if not name.startswith(self.prefix) or not _NAME.match(name):
            raise ValueError(f"test namespaces are named {self.prefix}*, not {name!r}")

    def add(self, name: str) -> None:
        self._check(name)
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)

    def delete(self, name: str) -> None:
        self._check(name)
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)

    def existing(self) -> list[str]:
        netns = Path("/run/netns")
        return (
            sorted(p.name for p in netns.iterdir() if p.name.startswith(self.prefix))
            if netns.is_dir()
            else []
        )
