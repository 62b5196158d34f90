"""Numbers that must be finite and positive: steps, workloads, parameters, options, the CLI."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from connreset import (
    AssertLogs,
    AssertRunning,
    AssertTableFull,
    Experiment,
    Observe,
    SetSysctl,
    ValidationError,
    Wait,
    run,
    workloads,
)
from connreset._support import numbers
from connreset.engine.runner import run_on
from connreset.experiment.params import params_of, resolve
from connreset.experiment.plan import build
from connreset.testing import testbed
from connreset.ui.cli import main
from tests.conftest import Touched

NAN, INF = float("nan"), float("inf")
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("value", [NAN, INF, -INF, 0, -1, -0.0, True, False, "1", None, 10**400])
def test_positive_refuses_what_is_not_a_finite_number_above_zero(value: object) -> None:
    with pytest.raises(ValueError, match="x must be a finite number > 0"):
        numbers.positive("x", value)


@pytest.mark.parametrize("value", [1, 0.001, 1e9, 10**12])
def test_positive_takes_finite_numbers_above_zero(value: float) -> None:
    assert numbers.positive("x", value) == float(value)


def test_non_negative_takes_zero_and_refuses_nan() -> None:
    assert numbers.non_negative("x", 0) == 0.0
    for bad in (NAN, INF, -1e-9, True):
        with pytest.raises(ValueError, match=">= 0"):
            numbers.non_negative("x", bad)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Observe(NAN), "duration must be a finite number > 0"),
        (lambda: Observe(INF), "duration must be a finite number > 0"),
        (lambda: Observe(5, every=NAN), "every must be a finite number > 0"),
        (lambda: AssertTableFull(within=NAN), "within must be a finite number > 0"),
        (lambda: AssertLogs("app", pattern="x", within=INF), "within must be a finite number > 0"),
        (lambda: AssertRunning("app", replicas=-1), "replicas must be an integer >= 0"),
        (lambda: Wait(seconds=NAN), "seconds must be a finite number >= 0"),
        (lambda: Wait(seconds=INF), "seconds must be a finite number >= 0"),
        (lambda: Wait(seconds=-1), "seconds must be a finite number >= 0"),
        (lambda: Wait(seconds=1, timeout=NAN), "timeout must be a finite number > 0"),
        (lambda: Wait(seconds=1, timeout=INF), "timeout must be a finite number > 0"),
        (lambda: SetSysctl("nf_conntrack_max", 1200, timeout=-1), "timeout must be a finite number > 0"),
    ],
)
def test_steps_refuse_nan_infinite_and_negative_numbers(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: workloads.simple_app_client("s", rate=NAN), "rate must be a finite number >= 0"),
        (lambda: workloads.simple_app_client("s", hold=INF), "hold must be a finite number >= 0"),
        (lambda: workloads.simple_app_client("s", connections=0), "connections must be an integer >= 1"),
        (lambda: workloads.nc_loop("s", every=0), "every must be a finite number > 0"),
        (lambda: workloads.nc_loop("s", every=NAN), "every must be a finite number > 0"),
        (lambda: workloads.boom_server(close_after=-1), "close_after must be a finite number >= 0"),
        (lambda: workloads.boom_server(offset=1.5), "offset must be an integer"),  # type: ignore[arg-type]
        (lambda: workloads.http_server(size=-1), "size must be an integer >= 0"),
        (lambda: workloads.http_server(port=0), "port must be an integer from 1 to 65535"),
        (lambda: workloads.curl_loop("s", port=70000), "port must be an integer from 1 to 65535"),
        (lambda: workloads.udp_fill("node-1", count=0), "count must be an integer >= 1"),
    ],
)
def test_workloads_refuse_bad_numbers(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def exp(*, ratio: float = 0.5) -> Experiment:
    return Experiment.single("e", Wait(seconds=ratio))


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_float_parameters_must_be_finite(text: str) -> None:
    with pytest.raises(ValidationError, match="parameter ratio must be a finite number"):
        resolve(params_of(exp), raw={"ratio": text})
    with pytest.raises(ValidationError, match="parameter ratio must be a finite number"):
        resolve(params_of(exp), given={"ratio": float(text)})
    assert math.isfinite(resolve(params_of(exp), raw={"ratio": "1e3"})["ratio"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_timeout": NAN}, "step_timeout must be a finite number > 0"),
        ({"step_timeout": -1}, "step_timeout must be a finite number > 0"),
        ({"undo_timeout": INF}, "undo_timeout must be a finite number > 0"),
        ({"undo_timeout": 0}, "undo_timeout must be a finite number > 0"),
        ({"watchdog_lease": NAN}, "watchdog_lease must be a finite number > 0"),
        ({"watchdog_lease": -60}, "watchdog_lease must be a finite number > 0"),
    ],
)
async def test_run_refuses_bad_timeouts_before_opening_the_testbed(
    kwargs: dict[str, float], message: str
) -> None:
    tb = testbed()
    exp = Experiment.single("t", SetSysctl("nf_conntrack_max", 1200))
    with pytest.raises(ValidationError, match=message):
        await run(exp, tb, **kwargs)  # type: ignore[arg-type]
    assert tb.access.calls == [] and tb.cluster.calls == []
    async with tb:
        with pytest.raises(ValidationError, match=message):
            await run_on(tb, build(exp), **kwargs)  # type: ignore[arg-type]
    assert not [c for c in tb.access.calls if c[0] == "write_file"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--step-timeout", "-1"],  # issue 11: it built the lab, then every step timed out
        ["--step-timeout", "nan"],
        ["--step-timeout", "inf"],
        ["--step-timeout", "0"],
        ["--undo-timeout", "nan"],
        ["--undo-timeout", "-5"],
        ["--watchdog-lease", "nan"],
        ["--watchdog-lease", "-1"],
        ["--cluster-opt", "time_scale=nan"],  # issue 11: --backend-opt time_scale=nan was accepted
        ["--cluster-opt", "time_scale=inf"],
        ["--cluster-opt", "time_scale=-1"],
        ["--cluster-opt", "nodes=0"],
        ["--cluster-opt", "nodes=61"],
        ["--cluster-opt", "nodes=1.5"],
        ["--set", "rate=nan"],
        ["--set", "rate=inf"],
        ["--set", "replicas=-1"],
    ],
)
def test_the_cli_refuses_bad_numbers_on_the_lab_before_touching_it(
    argv: list[str], untouchable: Touched, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(ROOT / "experiments/blog_repro.py"), "--no-tui", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert untouchable == []


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "experiments/sweep_boom_offset.py", "--time-budget", "nan"],
        ["sweep", "experiments/sweep_boom_offset.py", "--time-budget", "-1"],
        ["sweep", "experiments/sweep_boom_offset.py", "--max-trials", "0"],
        ["sweep", "experiments/sweep_boom_offset.py", "--max-trials", "1.5"],
        ["sweep", "experiments/sweep_boom_offset.py", "--seed", "x"],
        ["restore", "--undo-timeout", "inf"],
        ["lab", "up", "--nodes", "0"],
        ["lab", "up", "--nodes", "61"],
        ["lab", "up", "--nodes", "-3"],
        ["lab", "status", "--nodes", "nan"],
    ],
)
def test_other_commands_refuse_bad_numbers_in_one_line(
    argv: list[str], untouchable: Touched, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"connreset {argv[0]}: argument")
    assert untouchable == []


@pytest.mark.parametrize(("option", "value"), [("ready_timeout", "nan"), ("poll", "inf")])
def test_kubernetes_options_refuse_nan(option: str, value: str) -> None:
    from connreset.testbed import TestbedSpec, registry

    with pytest.raises(
        ValidationError, match=f"cluster backend 'kubernetes': option {option} must be a finite number, got"
    ):
        registry.build(TestbedSpec("kubernetes", None, {"context": "kind-kind", option: value}))


@pytest.mark.parametrize("option", ["ready_timeout", "exec_timeout"])
def test_kubectl_debug_options_refuse_nan(option: str) -> None:
    from connreset.kubernetes.debug_access import KubectlDebugAccess

    with pytest.raises(ValidationError, match=f"option {option} must be a finite number, got 'nan'"):
        KubectlDebugAccess(**{option: "nan"})


def test_docker_and_ssh_options_refuse_nan(tmp_path: Path) -> None:
    from connreset.docker.access import DockerNodeAccess
    from connreset.ssh.access import SshNodeAccess

    with pytest.raises(ValidationError, match="option timeout must be a finite number, got 'nan'"):
        DockerNodeAccess(cluster="kind", timeout="nan")
    inventory = tmp_path / "nodes.toml"
    (tmp_path / "kh").write_text("")
    inventory.write_text(f'[defaults]\nknown_hosts = "{tmp_path}/kh"\n[nodes.node-1]\nhost = "127.0.0.1"\n')
    for option in ("timeout", "connect_timeout"):
        with pytest.raises(
            ValidationError, match=f"'ssh': option {option} must be a finite number, got 'inf'"
        ):
            SshNodeAccess(str(inventory), **{option: "inf"})


def test_an_option_of_the_wrong_type_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``--cluster-opt nodes=x`` on a backend that declares nodes an int: exit 2, not a traceback."""
    argv = [str(ROOT / "experiments/issue_74839.py"), "--cluster", "connreset.testing:memory_cluster"]
    assert main([*argv, "--cluster-opt", "nodes=x", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "connreset: cluster backend 'memory': option nodes must be a whole number, got 'x'\n"
    )
