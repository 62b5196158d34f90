"""The kernel cache: Debian kernel packages fetched through a private apt, unpacked, never installed.

``fetch("5.10")`` resolves an alias to a suite and its ``linux-image-amd64`` metapackage (or takes
an exact package name), downloads the package with ``apt-get download`` using a sources list and
state directories of its own (the host's apt configuration is read for its mirror, never changed),
unpacks it with ``dpkg-deb -x`` under :func:`cache_root` and runs ``depmod -b`` on the tree.
Each kernel's ``kernel.json`` records where it came from (package, version, sha256 of the .deb).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError

log = get_logger("connreset.guest")

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@attrs.frozen
class Alias:
    """A short kernel name: the Debian suites that carry it and the metapackage to resolve."""

    name: str
    suites: tuple[str, ...]
    about: str
    meta: str = "linux-image-amd64"


#: The aliases `connreset kernels fetch` knows; any other word must be an exact package name.
ALIASES: dict[str, Alias] = {
    a.name: a
    for a in (
        Alias("5.10", ("bullseye", "bullseye-security"), "Debian 11 (bullseye), before 6e250dcbff1d"),
        Alias("6.1", ("bookworm", "bookworm-security"), "Debian 12 (bookworm), with 6e250dcbff1d"),
        Alias("6.12", ("bookworm-backports",), "Debian 12's backports"),
    )
}
#: Where to look for an exact package name, in order.
SUITES = ("bullseye", "bullseye-security", "bookworm", "bookworm-security", "bookworm-backports")
_PACKAGE = re.compile(r"^linux-image-[0-9][A-Za-z0-9.+~-]*$")


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/connreset`` (default ``~/.cache/connreset``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "connreset"


def kernels_dir() -> Path:
    return cache_root() / "kernels"


@attrs.frozen
class Kernel:
    """A kernel a guest can boot: its image, its modules tree and where it came from."""

    release: str  # uname -r in the guest, e.g. 5.10.0-33-amd64
    vmlinuz: Path
    modules: Path  # the directory holding lib/modules/RELEASE (a root for depmod -b / modprobe -d)
    package: str = ""  # the Debian package, or "" for a user's own kernel
    version: str = ""  # the package's version
    sha256: str = ""  # of the .deb
    suite: str = ""
    alias: str = ""

    @property
    def label(self) -> str:
        """How a run names it: ``5.10.0-33-amd64 (linux-image-5.10.0-33-amd64 5.10.226-1)``."""
        return f"{self.release} ({self.package} {self.version})" if self.package else self.release


def _from_record(tree: Path) -> Kernel | None:
    try:
        doc = json.loads((tree / "kernel.json").read_text())
        return Kernel(
            release=doc["release"],
            vmlinuz=tree / doc["vmlinuz"],
            modules=tree / "root",
            package=doc["package"],
            version=doc["version"],
            sha256=doc["sha256"],
            suite=doc.get("suite", ""),
            alias=doc.get("alias", ""),
        )
    except (OSError, KeyError, ValueError, TypeError):
        return None


def cached() -> list[Kernel]:
    """The kernels in the cache, oldest release first."""
    root = kernels_dir()
    if not root.is_dir():
        return []
    found = [k for d in sorted(root.iterdir()) if d.is_dir() and (k := _from_record(d)) is not None]
    return sorted(found, key=lambda k: _version_key(k.release))


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release)[:4])


def find(word: str) -> Kernel | None:
    """A cached kernel by alias (the newest release of it), release or package name."""
    matches = [k for k in cached() if word in (k.alias, k.release, k.package)]
    if not matches and word in ALIASES:
        matches = [k for k in cached() if k.release.startswith(word + ".")]
    return matches[-1] if matches else None


def own(path: Path, modules: Path | None = None) -> Kernel:
    """A user's own kernel: a vmlinuz, and the directory holding ``lib/modules/RELEASE`` (default:
    found next to it, as in a distro's ``/boot`` + ``/lib/modules``, or an unpacked package).

    Raises:
        ValidationError: the image or its modules cannot be found.
    """
    if not path.is_file():
        raise ValidationError(f"--kernel {path}: no such kernel image (give a vmlinuz, or 5.10, 6.1, 6.12)")
    match = re.match(r"vmlinuz-(.+)$", path.name)
    roots = [modules] if modules else [path.parent.parent, Path("/")]
    for root in roots:
        assert root is not None
        tree = root / "lib" / "modules"
        releases = [match.group(1)] if match else sorted(p.name for p in tree.glob("*") if p.is_dir())
        for release in releases:
            if (tree / release).is_dir():
                return Kernel(release=release, vmlinuz=path.resolve(), modules=root.resolve())
    raise ValidationError(
        f"--kernel {path}: no lib/modules/RELEASE found under {', '.join(str(r) for r in roots)}"
    )


def resolve(word: str) -> Kernel:
    """What ``--kernel WORD`` names: a cached alias/release/package, or a path to a vmlinuz.

    Raises:
        ValidationError: nothing cached by that name (and it is not a file).
    """
    if "/" in word or Path(word).is_file():
        return own(Path(word))
    kernel = find(word)
    if kernel is None:
        hint = f"fetch it first: connreset kernels fetch {word}"
        if word not in ALIASES and not _PACKAGE.match(word):
            hint = f"known: {', '.join(ALIASES)}, a linux-image-… package, or a path to a vmlinuz"
        raise ValidationError(f"--kernel {word}: not in the kernel cache ({hint})")
    return kernel


# -- fetching ---------------------------------------------------------------------------------


def mirrors() -> tuple[str, str]:
    """The Debian archive and security mirrors the host's apt sources use (read only)."""
    main, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    texts: list[str] = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") or p.name == "sources.list":
            try:
                texts.append(p.read_text())
            except OSError:
                continue
    for text in texts:
        for uri in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            uri = uri.rstrip("/")
            if uri.endswith("/debian-security"):
                security = uri
            elif uri.endswith("/debian"):
                main = uri
    return main, security


@attrs.frozen
class PrivateApt:
    """apt-get / apt-cache with a sources list and state of their own, for one suite."""

    suite: str
    root: Path

    def argv(self, tool: str) -> list[str]:
        r = self.root
        return [
            tool,
            "-q",
            "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::Etc::Preferences={r / 'preferences'}",
            "-o", "Dir::Etc::PreferencesParts=/nonexistent",
            "-o", f"Dir::State={r / 'state'}",
            "-o", f"Dir::State::Lists={r / 'state' / 'lists'}",
            "-o", f"Dir::State::status={r / 'state' / 'status'}",
            "-o", f"Dir::Cache={r / 'cache'}",
            "-o", f"Dir::Cache::Archives={r / 'cache' / 'archives'}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none",
        ]  # fmt: skip

    def prepare(self) -> None:
        main, security = mirrors()
        uri = security if self.suite.endswith("-security") else main
        for d in ("state/lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        (self.root / "preferences").touch()
        (self.root / "sources.list").write_text(f"deb [signed-by={KEYRING}] {uri} {self.suite} main\n")

    def update(self) -> None:
        self.prepare()
        _check([*self.argv("apt-get"), "update"], f"apt-get update for {self.suite}")

    def show(self, package: str) -> dict[str, str] | None:
        out = subprocess.run(
            [*self.argv("apt-cache"), "show", "--no-all-versions", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip():
            return None
        fields: dict[str, str] = {}
        for line in out.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line.startswith(" "):
                fields[key] = value.strip()
        return fields

    def download(self, package: str, version: str, into: Path) -> Path:
        _check(
            [*self.argv("apt-get"), "download", f"{package}={version}"], f"apt-get download {package}", into
        )
        debs = sorted(into.glob(f"{package}_*.deb"))
        if not debs:
            raise BackendError(f"apt-get download {package}: no .deb appeared in {into}")
        return debs[-1]


def _check(argv: Sequence[str], what: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    except FileNotFoundError:
        raise BackendError(f"{what}: {argv[0]} is not installed") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise BackendError(f"{what} failed ({out.returncode}): {' / '.join(tail)}")
    return out.stdout


def tool(name: str) -> str:
    """A tool from PATH or the sbin directories (depmod, modprobe, busybox)."""
    for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]:
        if d and os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    raise BackendError(f"{name} is not installed (Debian: apt-get install kmod busybox-static)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_word(word: str) -> None:
    """Refuse what is neither an alias nor a ``linux-image-…`` package name (exit 2)."""
    if word not in ALIASES and not _PACKAGE.match(word):
        raise ValidationError(
            f"kernels fetch {word!r}: not a known kernel ({', '.join(ALIASES)}) "
            "nor a Debian package name (linux-image-…)"
        )
    if word.endswith(("-cloud-amd64", "-rt-amd64")):
        raise ValidationError(
            f"kernels fetch {word}: use the generic flavour (…-amd64): the cloud one has no 9p"
        )


def fetch(word: str, *, refresh: bool = False) -> Kernel:
    """Fetch, unpack and index a kernel; return the cached one if it is already there.

    Raises:
        ValidationError: ``word`` is neither an alias nor a package name.
        BackendError: apt, dpkg-deb or depmod failed.
    """
    check_word(word)
    if not refresh and (have := find(word)) is not None:
        return have
    alias = ALIASES.get(word)
    suites = alias.suites if alias else SUITES
    apt_root = cache_root() / "apt"
    for suite in suites:
        apt = PrivateApt(suite, apt_root / suite)
        log.info("apt-get update", suite=suite)
        apt.update()
        package = alias.meta if alias else word
        fields = apt.show(package)
        if fields is None:
            continue
        if alias:  # the metapackage depends on the versioned image
            dep = re.search(r"(linux-image-[0-9][^\s,(]*)", fields.get("Depends", ""))
            if dep is None or not dep.group(1).startswith(f"linux-image-{word}."):
                continue
            package = dep.group(1)
            if (have := find(package)) is not None and not refresh:
                return _with_alias(have, word)
            real = apt.show(package)
            if real is None:
                continue
            fields = real
        return _unpack(apt, package, fields["Version"], suite, word if alias else "")
    raise BackendError(f"kernels fetch {word}: not found in {', '.join(suites)}")


def _with_alias(kernel: Kernel, alias: str) -> Kernel:
    tree = kernel.modules.parent
    doc = json.loads((tree / "kernel.json").read_text())
    doc["alias"] = alias
    (tree / "kernel.json").write_text(json.dumps(doc, indent=2) + "\n")
    return attrs.evolve(kernel, alias=alias)


def _unpack(apt: PrivateApt, package: str, version: str, suite: str, alias: str) -> Kernel:
    dest = kernels_dir() / package.removeprefix("linux-image-")
    kernels_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kernels_dir(), prefix=".fetch-") as tmp:
        work = Path(tmp)
        log.info("apt-get download", package=package, version=version)
        deb = apt.download(package, version, work)
        sha = _sha256(deb)
        root = work / "tree" / "root"
        root.mkdir(parents=True)
        _check(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}")
        _usr_merge(root)
        modules = root / "lib" / "modules"
        releases = sorted(p.name for p in modules.iterdir()) if modules.is_dir() else []
        if len(releases) != 1:
            raise BackendError(f"{package}: expected one lib/modules/RELEASE, found {releases}")
        release = releases[0]
        vmlinuz = root / "boot" / f"vmlinuz-{release}"
        if not vmlinuz.is_file():
            raise BackendError(f"{package}: no boot/vmlinuz-{release} in the package")
        _check([tool("depmod"), "-a", "-b", str(root), release], f"depmod -b for {release}")
        record: dict[str, Any] = {
            "release": release,
            "package": package,
            "version": version,
            "sha256": sha,
            "suite": suite,
            "alias": alias,
            "vmlinuz": f"root/boot/vmlinuz-{release}",
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (work / "tree" / "kernel.json").write_text(json.dumps(record, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        (work / "tree").rename(dest)
    kernel = _from_record(dest)
    assert kernel is not None
    log.info("kernel cached", release=release, path=str(dest))
    return kernel


def _usr_merge(root: Path) -> None:
    """Newer packages ship ``usr/lib/modules``; keep one ``lib/modules`` path for vng and depmod."""
    usr = root / "usr" / "lib" / "modules"
    if usr.is_dir() and not (root / "lib" / "modules").exists():
        (root / "lib").mkdir(exist_ok=True)
        usr.rename(root / "lib" / "modules")


def remove(kernel: Kernel) -> None:
    """Delete a fetched kernel from the cache (a user's own kernel is never deleted)."""
    if not kernel.package:
        raise ValidationError(f"{kernel.release} is not in the cache")
    shutil.rmtree(kernel.modules.parent)
