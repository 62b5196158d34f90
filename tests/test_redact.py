"""Secrets stay out of logs, journals and the console: a processor, the journal, --set values."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import pytest

from connreset import Experiment, ValidationError
from connreset._support.logs import configure, get_logger
from connreset._support.redact import REDACTED, redact_deep, redact_secrets
from connreset.experiment.params import params_of, resolve
from connreset.ui.cli import main

BACKEND = [
    "--cluster",
    "connreset.testing:memory_cluster",
    "--node-access",
    "connreset.testing:memory_access",
]
SECRET = "s3cret"


def test_the_processor_redacts_secret_fields_and_secret_keys_of_nested_mappings() -> None:
    event = {
        "event": "opening",
        "token": SECRET,
        "client_secret": SECRET,
        "node": "node-1",
        "params": {"offset": 5, "api_token": SECRET},
        "options": {"kube": {"password": SECRET, "context": "kind"}},
        "hosts": [{"key": SECRET, "host": "h"}],
    }
    out = redact_secrets(None, "info", event)
    assert out == {
        "event": "opening",
        "token": REDACTED,
        "client_secret": REDACTED,
        "node": "node-1",
        "params": {"offset": 5, "api_token": REDACTED},
        "options": {"kube": {"password": REDACTED, "context": "kind"}},
        "hosts": [{"key": REDACTED, "host": "h"}],
    }


def test_names_are_words_not_substrings() -> None:
    assert redact_deep({"monkey": 1, "tokens_seen": 2, "keyboard": 3}) == {
        "monkey": 1,
        "tokens_seen": 2,
        "keyboard": 3,
    }


def test_the_clis_logging_configuration_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    get_logger("connreset.test").warning("connecting", token=SECRET, params={"password": SECRET, "n": 1})
    line = json.loads(capsys.readouterr().err)
    assert SECRET not in json.dumps(line)
    assert line["token"] == REDACTED and line["params"] == {"password": REDACTED, "n": 1}
    assert line["event"] == "connecting"


def test_the_library_alone_redacts_what_it_hands_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    """structlog not configured (a library user): warnings go to `logging`, redacted all the same."""
    with caplog.at_level(logging.WARNING):
        get_logger("connreset.test").warning("connecting", token=SECRET, options={"secret": SECRET})
    assert SECRET not in caplog.text and REDACTED in caplog.text


EXPERIMENT = """
from connreset import *
from connreset._support.logs import get_logger

def experiment(*, token: str = "", offset: int = 1) -> Experiment:
    async def use(ctx):
        get_logger("experiment").warning("using the token", token=token, params={"token": token})
        return "used"
    return Experiment.single("secretive", SetSysctl("nf_conntrack_max", 1200) >> Call(use))
"""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_run_with_a_secret_parameter_leaves_it_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    path, journal = tmp_path / "secretive.py", tmp_path / "j.json"
    path.write_text(EXPERIMENT)
    argv = [str(path), *BACKEND, "--set", f"token={SECRET}", "--journal", str(journal), "--no-tui"]
    assert main(["--log-format", log_format, "-v", *argv]) == 0
    out, err = capsys.readouterr()
    assert "using the token" in err  # the line was logged, and:
    assert SECRET not in err and SECRET not in out and SECRET not in journal.read_text()
    assert json.loads(journal.read_text())["params"] == {"token": REDACTED, "offset": 1}
    assert f"token={REDACTED}" in out  # the console's first line says it was given
    assert main([str(path), *BACKEND, "--set", f"token={SECRET}", "--dry-run"]) == 0
    assert SECRET not in capsys.readouterr().out


def test_the_journals_lines_never_hold_it_either(tmp_path: Path) -> None:
    """The journal as lines (a run killed before its summary) is redacted at the writer."""
    from connreset import events as ev
    from connreset.runs.journal import JournalWriter

    writer = JournalWriter(tmp_path / "j.json")
    writer.write(ev.RunStarted("x", {"db_password": SECRET}, "memory", "t", {}, ("p",), 1, "r", {}, 0.0))
    writer._file.flush()  # type: ignore[union-attr]
    assert SECRET not in (tmp_path / "j.json").read_text()
    writer.close()
    assert SECRET not in (tmp_path / "j.json").read_text()


@pytest.mark.parametrize(("name", "text"), [("token", SECRET), ("password", SECRET), ("api_key", "x")])
def test_a_refused_secret_parameter_is_not_quoted(name: str, text: str) -> None:
    def exp(*, token: int = 0, password: Literal["a", "b"] = "a", api_key: float = 1.0) -> Experiment:
        raise AssertionError

    with pytest.raises(ValidationError) as info:
        resolve(params_of(exp), raw={name: text})
    assert text not in str(info.value) and f"parameter {name}" in str(info.value)
