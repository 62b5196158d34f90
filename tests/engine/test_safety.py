"""Safe on a shared cluster: what a run creates carries its id, and it touches nothing else."""

from __future__ import annotations

import pytest

from connreset import (
    Call,
    Delete,
    Deploy,
    DeploymentSpec,
    Experiment,
    Scale,
    StepContext,
    ValidationError,
    run,
    run_on,
    workloads,
)
from connreset.experiment.plan import build
from connreset.testbed import RUN_LABEL
from connreset.testing import testbed
from connreset.workloads import Opaque


async def test_a_run_refuses_to_deploy_over_a_deployment_made_outside_it() -> None:
    tb = testbed()
    theirs = DeploymentSpec("boom-server", Opaque("theirs"), 3, labels={"app": "theirs"})
    exp = Experiment.single(
        "clash", Deploy("boom-server", workloads.boom_server(), port=9000) >> Scale("boom-server", 1)
    )
    async with tb:
        await tb.cluster.deploy(theirs)
        tb.cluster.calls.clear()
        with pytest.raises(ValidationError) as info:
            await run_on(tb, build(exp))
        after = await tb.cluster.get("boom-server")
    assert "deployment 'boom-server' already exists, created outside connreset" in str(info.value)
    assert info.value.step == "deploy boom-server"
    assert after is not None and after.replicas == 3 and after.labels == {"app": "theirs"}
    assert [c for c in tb.cluster.calls if c[0] in ("deploy", "scale", "delete")] == []


async def test_everything_a_run_creates_carries_its_id() -> None:
    tb = testbed()
    labels: list[dict[str, str]] = []

    async def look(ctx: StepContext) -> None:
        spec = await ctx.cluster.get("app")
        assert spec is not None
        labels.append(dict(spec.labels))

    result = await run(Experiment.single("id", Deploy("app", workloads.command(["true"])) >> Call(look)), tb)
    assert result.passed, result.steps
    assert labels == [{"app": "app", RUN_LABEL: result.run_id}]


async def test_undo_deletes_only_what_carries_the_runs_id() -> None:
    """Someone made the Deployment again meanwhile: the undo leaves theirs and says so."""
    tb = testbed()

    async def replaced(ctx: StepContext) -> None:
        tb.cluster.deployments["app"]["labels"] = {RUN_LABEL: "someone-else"}

    exp = Experiment.single("steal", Deploy("app", workloads.command(["true"])) >> Call(replaced))
    result = await run(exp, tb)
    (undo,) = result.undo
    assert not undo.verified and "carries run id someone-else" in undo.detail
    assert "app" in tb.cluster.deployments
    assert result.pending == ("cluster: delete deployment app",)
    assert result.outcome == "error"


async def test_delete_refuses_a_deployment_the_run_did_not_create() -> None:
    tb = testbed()
    async with tb:
        await tb.cluster.deploy(DeploymentSpec("web", Opaque("theirs"), 1))
        result = await run_on(tb, build(Experiment.single("del", Delete("web"))))
    assert result.outcome == "error"
    assert "already exists, created outside connreset" in result.steps[0].detail
    assert "web" in tb.cluster.deployments


async def test_scale_undo_restores_the_specs_replicas_not_the_pods_seen() -> None:
    tb = testbed()
    async with tb:
        await tb.cluster.deploy(DeploymentSpec("web", Opaque("theirs"), 3))
        tb.cluster.missing["web"] = 2  # one pod of three exists
        assert len(await tb.cluster.pods("web")) == 1
        result = await run_on(tb, build(Experiment.single("s", Scale("web", 10))))
        assert result.passed, result.steps
        after = await tb.cluster.get("web")
    assert after is not None and after.replicas == 3
    assert result.undo[0].description == "scale web to 3"
