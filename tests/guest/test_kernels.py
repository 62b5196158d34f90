"""The kernel cache and the pieces of a guest run that need no guest: what apt is told, a user's
own kernel, the slowness, the argv handed to the guest, the combined sweep results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connreset.errors import ValidationError
from connreset.guest import kernels, timing
from connreset.ui import kernels as gcli
from connreset.ui.cli import main


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "connreset" / "kernels"


def fake_kernel(root: Path, release: str = "5.10.0-99-amd64") -> Path:
    (root / "lib" / "modules" / release).mkdir(parents=True)
    (root / "boot").mkdir(parents=True)
    image = root / "boot" / f"vmlinuz-{release}"
    image.write_bytes(b"not really a kernel")
    return image


def test_private_apt_never_names_the_hosts_state(tmp_path: Path) -> None:
    argv = kernels.PrivateApt("bullseye", tmp_path).argv("apt-get")
    settings = dict(a.split("=", 1) for a in argv if "=" in a)
    for key in (
        "Dir::State",
        "Dir::State::Lists",
        "Dir::State::status",
        "Dir::Cache",
        "Dir::Etc::SourceList",
    ):
        assert settings[key].startswith(str(tmp_path)), key
    assert settings["Dir::Etc::SourceParts"] == "/nonexistent"
    assert not any("/var/lib/apt" in a or a.startswith("/etc/apt") for a in argv)


def test_private_apt_sources_name_one_suite_and_the_keyring(tmp_path: Path) -> None:
    apt = kernels.PrivateApt("bullseye-security", tmp_path)
    apt.prepare()
    line = (tmp_path / "sources.list").read_text().strip()
    assert line.startswith(f"deb [signed-by={kernels.KEYRING}] ")
    assert line.endswith("-security bullseye-security main")


def test_mirrors_come_from_the_hosts_sources() -> None:
    main_uri, security = kernels.mirrors()
    assert main_uri.startswith("http") and main_uri.endswith("/debian")
    assert security.endswith("/debian-security")


def test_own_kernel_finds_its_modules_next_to_it(tmp_path: Path) -> None:
    image = fake_kernel(tmp_path)
    k = kernels.own(image)
    assert (k.release, k.modules, k.package) == ("5.10.0-99-amd64", tmp_path.resolve(), "")
    assert k.label == "5.10.0-99-amd64"


def test_own_kernel_without_modules_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "vmlinuz-0.0.0-nothing"
    image.write_bytes(b"x")
    with pytest.raises(ValidationError, match="no lib/modules/RELEASE"):
        kernels.own(image, tmp_path)


def test_the_cache_lists_and_finds_by_alias_release_and_package(cache: Path) -> None:
    for release, alias in (("6.1.0-9-amd64", "6.1"), ("5.10.0-9-amd64", "5.10")):
        tree = cache / release
        fake_kernel(tree / "root", release)
        record = {
            "release": release,
            "package": f"linux-image-{release}",
            "version": "1",
            "sha256": "ab" * 32,
            "alias": alias,
            "vmlinuz": f"root/boot/vmlinuz-{release}",
        }
        (tree / "kernel.json").write_text(json.dumps(record))
    assert [k.release for k in kernels.cached()] == ["5.10.0-9-amd64", "6.1.0-9-amd64"]
    for word in ("5.10", "5.10.0-9-amd64", "linux-image-5.10.0-9-amd64"):
        found = kernels.find(word)
        assert found is not None and found.release == "5.10.0-9-amd64"
    assert kernels.find("6.12") is None


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["kernels", "fetch", "9.99"], "not a known kernel"),
        (["kernels", "fetch", "linux-image-6.1.0-9-cloud-amd64"], "generic flavour"),
        (["kernels", "fetch"], "name at least one"),
        (["experiments/issue_74839.py", "--kernel", "4.4"], "not in the kernel cache"),
        (["experiments/issue_74839.py", "--kernel", "5.10,6.1"], "takes one kernel"),
        (["experiments/issue_74839.py", "--kernel", "5.10", "--guest-memory", "lots"], "--guest-memory"),
        (["sweep", "experiments/sweep_boom_offset.py", "--kernel", "host,host"], "distinct kernels"),
    ],
)
def test_bad_kernel_input_is_one_line_and_exit_2(
    cache: Path, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--guest-memory" in argv:
        fake = cache / "5.10.0-9-amd64"
        fake_kernel(fake / "root", "5.10.0-9-amd64")
        (fake / "kernel.json").write_text(
            json.dumps(
                {
                    "release": "5.10.0-9-amd64",
                    "package": "linux-image-5.10.0-9-amd64",
                    "version": "1",
                    "sha256": "",
                    "alias": "5.10",
                    "vmlinuz": "root/boot/vmlinuz-5.10.0-9-amd64",
                }
            )
        )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_kernels_list_names_the_cache_and_what_can_be_fetched(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kernels", "list"]) == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "nothing cached yet" in out
    assert "5.10 (Debian 11" in out


def test_the_guest_gets_the_same_command_without_the_guest_options() -> None:
    argv = ["run", "x.py", "--kernel", "5.10", "--set", "a=1", "--accel=tcg", "--guest-console", "--tui"]
    argv += ["--guest-mem", "1G", "--journal", "j.json"]
    assert gcli.strip(argv, {**gcli.OWN, "--journal": True, "--tui": False}) == [
        "run",
        "x.py",
        "--set",
        "a=1",
    ]


def test_slowness_scales_waits_only_in_a_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(timing.ENV, raising=False)
    assert timing.scaled(10.0) == 10.0
    monkeypatch.setenv(timing.ENV, "3.5")
    assert timing.scaled(10.0) == 35.0
    monkeypatch.setenv(timing.ENV, "1000")
    assert timing.slowness() == timing.RANGE[1]
    assert timing.ratio(0.01, 0.02) == 1.0 and timing.ratio(0.05, 0.01) == 5.0


def test_the_fingerprint_names_the_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    from connreset.engine.runner import environment

    monkeypatch.delenv(timing.GUEST_ENV, raising=False)
    assert not any(k.startswith("guest_") for k in environment())
    monkeypatch.setenv(timing.GUEST_ENV, json.dumps({"kernel": "5.10.0-9-amd64", "accel": "tcg"}))
    env = environment()
    assert env["guest_kernel"] == "5.10.0-9-amd64" and env["guest_accel"] == "tcg"


def test_a_sweep_under_several_kernels_makes_one_results_file(tmp_path: Path) -> None:
    for name, last in (("5.10", -4096), ("host", None)):
        sub = tmp_path / gcli._dirname(name)
        sub.mkdir()
        doc = {
            "boundaries": [
                {
                    "workload": {"fix": "none"},
                    "last_failing": last,
                    "first_holding": 0,
                    "complete": True,
                    "trials": 3,
                    "confidence": "confirmed",
                }
            ],
            "recommendation": [{"line": f"with none: {name}"}],
        }
        (sub / "results.json").write_text(json.dumps(doc))
    path = gcli.combine(tmp_path, ["5.10", "host", "6.1"])
    doc = json.loads(path.read_text())
    assert doc["kernels"]["5.10"]["boundaries"][0]["last_failing"] == -4096
    assert doc["kernels"]["host"]["boundaries"][0]["last_failing"] is None
    assert "error" in doc["kernels"]["6.1"]
    table = (tmp_path / "kernels.md").read_text()
    assert "## 5.10" in table and "| fix=none | -4,096 | 0 | 3 | confirmed |" in table


def test_restore_of_a_guest_runs_journal_puts_nothing_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from connreset import events as ev
    from connreset.runs.journal import JournalWriter

    path = tmp_path / "guest.json"
    writer = JournalWriter(path)
    env = {"kernel": "5.10.0-9-amd64", "guest_kernel": "5.10.0-9-amd64", "guest_accel": "tcg"}
    # killed mid-run: the lines so far, no summary
    writer.write(ev.RunStarted("x", {}, "lab", ev.now_iso(), env, ("main",), 1, run_id="r1"), durable=True)
    assert main(["restore", str(path)]) == 0
    out = capsys.readouterr().out
    assert "guest of kernel 5.10.0-9-amd64 (TCG)" in out and "nothing to restore on this host" in out
