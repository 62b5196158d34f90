"""One options mechanism: declared once, parsed by one converter, listed, and redacted by its flag."""

from __future__ import annotations

from typing import Literal

import attrs
import pytest

from connreset import BaseClusterBackend, ValidationError, option
from connreset.testbed import Testbed, TestbedSpec
from connreset.testbed import options as opts
from connreset.testing import MemoryNodeAccess


@attrs.frozen
class Opts:
    endpoint: str = option(help="where the API is (required)")
    token: str = option("", "an API token", secret=True)
    retries: int = option(3, "how many times to try")
    ratio: float = option(0.5, "a fraction")
    verbose: bool = option(False, "say more")
    mode: Literal["fast", "safe"] = option("safe", "how")
    zone: str | None = option(None, "a zone (none: any)")


class Backend(BaseClusterBackend):
    name = "demo"
    Options = Opts


def test_strings_are_converted_to_the_declared_types() -> None:
    given = {"endpoint": "e", "retries": "5", "ratio": "0.25", "verbose": "yes", "mode": "fast", "zone": "a"}
    assert opts.parse(Opts, given, "x") == Opts("e", "", 5, 0.25, True, "fast", "a")
    assert opts.parse(Opts, {"endpoint": "e", "retries": 7}, "x").retries == 7  # typed values from code
    assert opts.parse(Opts, {"endpoint": "e", "zone": "none"}, "x").zone is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"endpoint": "e", "retrys": "1"},
            "cluster backend 'demo' has no option 'retrys'; did you mean 'retries'?",
        ),
        (
            {"endpoint": "e", "colour": "1"},
            "(its options: endpoint, token, retries, ratio, verbose, mode, zone)",
        ),
        ({}, "cluster backend 'demo' needs the option endpoint=…: where the API is (required)"),
        ({"endpoint": "e", "retries": "ten"}, "option retries must be a whole number, got 'ten'"),
        ({"endpoint": "e", "ratio": "nan"}, "option ratio must be a finite number, got 'nan'"),
        ({"endpoint": "e", "verbose": "maybe"}, "option verbose must be true or false, got 'maybe'"),
        ({"endpoint": "e", "mode": "slow"}, "option mode must be one of fast, safe, got 'slow'"),
    ],
)
def test_one_error_names_the_option_the_value_and_the_valid_ones(given: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Backend(**given)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_described_for_plugins_options() -> None:
    rows = {o.name: o for o in opts.describe(Opts)}
    assert rows["endpoint"].default is None and rows["token"].secret
    assert (rows["retries"].type, rows["retries"].default, rows["retries"].help) == (
        "int",
        "3",
        "how many times to try",
    )
    assert rows["mode"].type == "fast|safe" and rows["zone"].type == "str"


def test_the_journal_redacts_by_the_secret_flag_not_by_the_name() -> None:
    cluster = Backend(endpoint="e", token="s3cret")
    spec = TestbedSpec("demo", "memory", {"endpoint": "e", "token": "s3cret"}, {})
    data = Testbed(cluster, MemoryNodeAccess(), spec).spec_json()
    assert data["cluster_options"] == {"endpoint": "e", "token": "<redacted>"}
    assert opts.secret_names(Opts) == {"token"}
