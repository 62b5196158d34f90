"""kind-like node containers for tests: podman's Docker-compatible service, a local node image, and
containers labelled as kind labels its nodes, each joined to a given network namespace.

No registry is reachable, so the node image is made on this machine from its own files: the
binaries connreset runs on a node (``sh``, ``cat``, ``tee``, ``readlink``, ``sleep``, util-linux's
``dmesg``, ``iptables`` (nft) with its xtables modules, ``conntrack``) and the libraries ``ldd``
says they need, imported as one layer (``docker import``). Each node container is created as kind
creates its nodes (privileged, named NAME, hostname NAME, labelled
``io.x-k8s.kind.cluster=CLUSTER`` and ``io.x-k8s.kind.role=ROLE``) but, instead of a network of its
own, joins a namespace (``--network ns:/run/netns/NS``)::

    with PodmanEngine(tmp) as engine:
        image = build_node_image(engine)
        with KindNodes(engine, "t1", {"t1-control-plane": "crdock-a", "t1-worker": "crdock-b"}, image):
            access = DockerNodeAccess(cluster="t1")   # with DOCKER_HOST=engine.url

Tests use ``crdock-*`` namespaces they create; the lab's acceptance run points the same helper at
the lab's ``crlab-node-N``, naming the containers ``node-1``, ``node-2`` (the node name is the
container name, as in kind)::

    python -m tests.docker.kind --root /tmp/kind-lab --cluster lab node-1=crlab-node-1 node-2=crlab-node-2

The engine runs with storage of its own under ``root`` and is stopped by its PID (its process
group), never by name; containers are removed (``docker rm -f``) before it stops. Readiness is
waited for by asking the engine (``docker version``) until a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.netns import Namespaces
from tests.processes import stop_group

PODMAN = "podman"
DOCKER = "/usr/local/bin/docker" if Path("/usr/local/bin/docker").exists() else "docker"
IMAGE = "localhost/connreset/kind-node:local"
CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
_NS = re.compile(r"^[A-Za-z0-9_.-]+$")

#: what connreset runs on a node, and what the helper container runs (sleep)
BINARIES = (
    "/usr/bin/dash",
    "/usr/bin/cat",
    "/usr/bin/tee",
    "/usr/bin/readlink",
    "/usr/bin/dmesg",
    "/usr/bin/sleep",
    "/usr/bin/true",
    "/usr/sbin/xtables-nft-multi",
    "/usr/sbin/conntrack",
)
XTABLES = Path("/usr/lib/x86_64-linux-gnu/xtables")
#: names in the image → what they point to (relative symlinks, merged /usr as Debian has it)
LINKS = {
    "bin": "usr/bin",
    "sbin": "usr/sbin",
    "lib": "usr/lib",
    "lib64": "usr/lib64",
    "usr/bin/sh": "dash",
    "usr/sbin/iptables": "xtables-nft-multi",
    "usr/sbin/iptables-save": "xtables-nft-multi",
    "usr/sbin/iptables-restore": "xtables-nft-multi",
}


def have_engine() -> bool:
    """podman (for the service) and a docker CLI are installed."""
    return shutil.which(PODMAN) is not None and shutil.which(DOCKER) is not None


class PodmanEngine:
    """podman's Docker-compatible service on a socket under ``root``, with storage of its own."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.socket = self.root / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "podman-service.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.url}

    def podman(self) -> list[str]:
        return [
            PODMAN,
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--tmpdir",
            str(self.root / "tmp"),
            "--cgroup-manager=cgroupfs",
            "--runtime",
            "runc",
        ]

    def docker(self, *args: str, stdin: bytes | None = None, check: bool = True) -> str:
        """``docker ARGS`` against this engine; its stdout."""
        done = subprocess.run(
            [DOCKER, *args], input=stdin, capture_output=True, env=self.env, check=False, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:4])}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace")

    def ok(self, *args: str) -> bool:
        """Whether ``docker ARGS`` exits 0."""
        done = subprocess.run([DOCKER, *args], capture_output=True, env=self.env, check=False, timeout=120)
        return done.returncode == 0

    def start(self, deadline: float = 30.0) -> PodmanEngine:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.podman(), "system", "service", "--time=0", self.url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a process group of its own, signalled by its PID
            )
        end = time.monotonic() + deadline
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"podman service exited {self.process.returncode}: {self._tail()}")
            done = subprocess.run(
                [DOCKER, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                env=self.env,
                check=False,
            )
            if done.returncode == 0 and done.stdout.strip():
                return self
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"podman service not answering on {self.url}: {self._tail()}")
            time.sleep(0.05)  # polling the engine itself, with a deadline

    def _tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").splitlines()[-3:]) if self.log.exists() else ""

    def containers(self, label: str) -> list[str]:
        """Names of the containers carrying a label (``key`` or ``key=value``)."""
        return self.docker("ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}").split()

    def stop(self) -> None:
        """SIGTERM to the service's process group (by PID), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_group(process, 10)
        self.end_conmons()
        self.unmount()

    def conmons(self) -> list[int]:
        """PIDs of the conmon processes this engine started (their arguments name our ``root``).

        Each ``docker exec`` leaves one waiting ``exit_command_delay`` (300 s) before cleaning up,
        so that the CLI can still read the exit code; they outlive the service."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"conmon") and any(a.startswith(bytes(self.root) + b"/") for a in argv):
                found.append(int(proc.name))
        return found

    def end_conmons(self, deadline: float = 10.0) -> None:
        """End them (by PID) once the containers are gone and the service has stopped: SIGKILL, as
        SIGTERM would run their exit command, a ``podman container cleanup`` that mounts the
        storage again."""
        end = time.monotonic() + deadline
        while pids := self.conmons():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > end:
                raise RuntimeError(f"conmon processes {pids} of {self.root} did not end")
            time.sleep(0.05)  # polling /proc until they are gone, with a deadline

    def unmount(self) -> None:
        """Unmount what podman mounted under ``root`` (its overlay storage binds itself), deepest
        first, so that the directory can be removed."""
        mine = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{self.root}/")
        ]
        for point in sorted(mine, key=len, reverse=True):
            subprocess.run(["umount", point], check=False, capture_output=True)

    def __enter__(self) -> PodmanEngine:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _libraries(path: str) -> list[str]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    return re.findall(r"(/\S+) \(0x", out)


def _in_image(path: str) -> str:
    """Where a host file goes in the image: everything under usr/ (merged /usr)."""
    for prefix in ("/lib64/", "/lib/", "/bin/", "/sbin/"):
        if path.startswith(prefix):
            return "usr/" + path.lstrip("/")
    return path.lstrip("/")


def rootfs_tar() -> bytes:
    """A root file system of this machine's own binaries and their libraries, as a tar."""
    files = set(BINARIES) | {str(p) for p in XTABLES.iterdir() if p.suffix == ".so"}
    for f in list(files):
        files.update(_libraries(f))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def directory(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)

        made: set[str] = set()
        for d in ("proc", "sys", "dev", "etc", "run", "tmp", "var", "usr", "usr/bin", "usr/sbin", "usr/lib"):
            directory(d)
            made.add(d)
        for f in sorted(files):
            name = _in_image(f)
            parent = str(Path(name).parent)
            for i in range(len(Path(parent).parts)):
                part = str(Path(*Path(parent).parts[: i + 1]))
                if part not in made:
                    directory(part)
                    made.add(part)
            info = tar.gettarinfo(os.path.realpath(f), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(os.path.realpath(f), "rb") as fh:
                tar.addfile(info, fh)
        for name, target in LINKS.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for etc in ("/etc/protocols", "/etc/services"):
            if Path(etc).exists():
                tar.add(etc, arcname=etc.lstrip("/"))
    return buffer.getvalue()


def build_node_image(engine: PodmanEngine, tag: str = IMAGE) -> str:
    """Import the node image into the engine (``docker import``); returns its tag."""
    engine.docker("import", "--change", 'CMD ["sleep", "infinity"]', "-", tag, stdin=rootfs_tar())
    return tag


def ulimits() -> list[str]:
    """``--ulimit`` for nofile and nproc within this process's hard limits: podman's defaults exceed
    them here, and runc may not raise them. (The podman service lowers its own nproc to
    ``kernel.pid_max``, so nproc stays at or below that.)"""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    out = []
    for name, which, cap in (
        ("nofile", resource.RLIMIT_NOFILE, 1048576),
        ("nproc", resource.RLIMIT_NPROC, pid_max),
    ):
        hard = resource.getrlimit(which)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        out += ["--ulimit", f"{name}={value}:{value}"]
    return out


class KindNodes:
    """Node containers of one kind-like cluster, each joined to a network namespace.

    Args:
        engine: the running engine.
        cluster: the value of ``io.x-k8s.kind.cluster``.
        nodes: container (and node) name → the network namespace it joins.
        image: the node image.
        roles: container name → ``io.x-k8s.kind.role`` (default: ``control-plane`` for a name
            ending so, else ``worker``).
    """

    def __init__(
        self,
        engine: PodmanEngine,
        cluster: str,
        nodes: Mapping[str, str],
        image: str = IMAGE,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        for ns in nodes.values():
            if not _NS.match(ns) or not Path(f"/run/netns/{ns}").exists():
                raise ValueError(f"no network namespace {ns!r} in /run/netns")
        self.engine = engine
        self.cluster = cluster
        self.nodes = dict(nodes)
        self.image = image
        self.roles = dict(roles or {})

    def role(self, name: str) -> str:
        return self.roles.get(name, "control-plane" if name.endswith("control-plane") else "worker")

    def run_args(self, name: str) -> list[str]:
        return [
            "run",
            "--detach",
            "--name",
            name,
            "--hostname",
            name,
            "--label",
            f"{CLUSTER_LABEL}={self.cluster}",
            "--label",
            f"{ROLE_LABEL}={self.role(name)}",
            "--privileged",
            "--network",
            f"ns:/run/netns/{self.nodes[name]}",
            *ulimits(),
            "--pull",
            "never",
            self.image,
        ]

    def start(self, deadline: float = 30.0) -> KindNodes:
        try:
            for name in self.nodes:
                self.engine.docker(*self.run_args(name))
            end = time.monotonic() + deadline
            for name in self.nodes:
                while not self._ready(name):
                    if time.monotonic() > end:
                        raise RuntimeError(f"node container {name} is not running")
                    time.sleep(0.05)  # polling the engine itself, with a deadline
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self, name: str) -> bool:
        """Running, and a command can be run in it."""
        state = self.engine.docker("inspect", "--format", "{{.State.Running}}", name, check=False).strip()
        return state == "true" and self.engine.ok("exec", name, "true")

    def stop(self) -> None:
        """Remove the cluster's containers (by its label)."""
        names = self.engine.containers(f"{CLUSTER_LABEL}={self.cluster}")
        if names:
            self.engine.docker("rm", "--force", *names, check=False)

    def __enter__(self) -> KindNodes:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_OURS = Namespaces("crdock-")
add_netns, delete_netns = _OURS.add, _OURS.delete


def crdock_namespaces() -> list[str]:
    """The ``crdock-*`` namespaces that exist now."""
    return _OURS.existing()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the engine and the node containers, print DOCKER_HOST, wait for SIGINT/SIGTERM, remove
    them and stop the engine."""
    parser = argparse.ArgumentParser(prog="python -m tests.docker.kind", description=main.__doc__)
    parser.add_argument("--root", type=Path, required=True, help="a directory of the engine's own")
    parser.add_argument("--cluster", required=True, help="the io.x-k8s.kind.cluster label's value")
    parser.add_argument(
        "nodes",
        nargs="*",
        metavar="NAME=NETNS",
        help="container name = namespace (none: engine and image only)",
    )
    args = parser.parse_args(argv)
    nodes = dict(n.split("=", 1) for n in args.nodes)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with PodmanEngine(args.root) as engine:
        image = build_node_image(engine)
        with KindNodes(engine, args.cluster, nodes, image) as kind_nodes:
            print(f"export DOCKER_HOST={engine.url}", flush=True)
            print(
                f"# {len(nodes)} node container(s) of cluster {args.cluster!r}; Ctrl-C removes them",
                flush=True,
            )
            stop.wait()
            kind_nodes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
