"""The inventory file and the access's options: every error names the file and the node."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from connreset import ValidationError
from connreset.ssh import SshNodeAccess, load_inventory
from connreset.testbed import NodeInfo, TestbedSpec
from connreset.testbed.registry import NODE_ACCESS, load
from connreset.testing import MemoryCluster


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "id").write_text("not parsed here\n")
    (tmp_path / "kh").write_text("")
    return tmp_path


def write(d: Path, text: str) -> Path:
    path = d / "inventory.toml"
    path.write_text(text.replace("DIR", str(d)))
    return path


GOOD = """
[defaults]
user = "root"
key = "DIR/id"
known_hosts = "DIR/kh"

[jumps.bastion]
host = "bastion.example.org"
user = "ops"

[nodes.node-1]
host = "10.0.0.11"

[nodes.node-2]
host = "10.0.0.12"
port = 2222
user = "admin"
jump = "bastion"
sudo = true
host_prefix = ["nsenter", "--net=/proc/1/ns/net", "--"]
"""


def test_a_good_inventory_with_defaults_and_a_jump_host(files: Path) -> None:
    inv = load_inventory(write(files, GOOD))
    one, two = inv.nodes["node-1"], inv.nodes["node-2"]
    assert (one.host, one.port, one.user, one.key, one.sudo, one.jump) == (
        "10.0.0.11",
        22,
        "root",
        str(files / "id"),
        False,
        None,
    )
    assert (two.port, two.user, two.sudo, two.jump) == (2222, "admin", True, "bastion")
    assert two.host_prefix == ("nsenter", "--net=/proc/1/ns/net", "--")
    assert inv.jumps["bastion"].user == "ops" and inv.jumps["bastion"].known_hosts == str(files / "kh")
    assert two.known_hosts_name == "[10.0.0.12]:2222" and one.known_hosts_name == "10.0.0.11"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("port = 2222", "port = 70000"), ["node 'node-2'", "port must be an integer from 1 to 65535"]),
        (("port = 2222", 'port = "22"'), ["node 'node-2'", "port must be an integer"]),
        (('host = "10.0.0.11"', 'host = "a; rm -rf /"'), ["node 'node-1'", "host must be a host name"]),
        (('user = "admin"', 'user = "ad min"'), ["node 'node-2'", "user must be a user name"]),
        (('jump = "bastion"', 'jump = "nope"'), ["node 'node-2'", "jump host 'nope' is not defined"]),
        (("sudo = true", 'sudo = "yes"'), ["node 'node-2'", "sudo must be true or false"]),
        (
            ('host_prefix = ["nsenter"', 'host_prefix = "nsenter" #'),
            ["node 'node-2'", "host_prefix must be a list"],
        ),
        (('host = "10.0.0.11"', 'hots = "10.0.0.11"'), ["node 'node-1'", "unknown key(s) hots"]),
        (('[nodes.node-1]\nhost = "10.0.0.11"', "[nodes.node-1]"), ["node 'node-1'", "host is missing"]),
        (
            ('user = "admin"', 'user = "admin"\nkey = "DIR/missing"'),
            ["node 'node-2'", "key missing: no such"],
        ),
        (
            ('known_hosts = "DIR/kh"', 'known_hosts = "DIR/nokh"'),
            ["jump host 'bastion'", "nokh: no such file"],
        ),
        (
            ("[jumps.bastion]", 'passphrase_env = "CONNRESET_TEST_UNSET"\n[jumps.bastion]'),
            ["CONNRESET_TEST_UNSET is not set"],
        ),
        (("[defaults]", "[defaults]\ncolour = 1"), ["[defaults]: unknown key(s) colour"]),
        (("[defaults]", "[extra]\n[defaults]"), ["unknown table(s) extra"]),
        (("[nodes.node-1]", "[nodes.node-1\n"), ["not valid TOML"]),
    ],
)
def test_invalid_inventories_name_the_file_and_the_node(
    files: Path, change: tuple[str, str], words: list[str]
) -> None:
    old, new = change
    assert old in GOOD
    path = write(files, GOOD.replace(old, new, 1))
    with pytest.raises(ValidationError) as err:
        load_inventory(path)
    assert str(err.value).startswith(f"{path}: ")
    for word in words:
        assert word in str(err.value).replace(str(files) + "/", "")


def test_no_nodes_and_no_file(files: Path) -> None:
    with pytest.raises(ValidationError, match="no nodes"):
        load_inventory(write(files, "[defaults]\n"))
    with pytest.raises(ValidationError, match="cannot read the SSH inventory"):
        load_inventory(files / "nope.toml")


def test_options_are_validated_before_anything(files: Path) -> None:
    path = str(write(files, GOOD))
    with pytest.raises(ValidationError, match="needs --node-opt inventory=FILE"):
        SshNodeAccess()
    with pytest.raises(ValidationError, match="fanout must be a finite number > 0"):
        SshNodeAccess(path, fanout="0")
    with pytest.raises(ValidationError, match="timeout must be a number"):
        SshNodeAccess(path, timeout="soon")
    with pytest.raises(ValidationError, match="shares_kernel must be true or false"):
        SshNodeAccess(path, shares_kernel="maybe")
    access = SshNodeAccess(path)
    assert (access.name, access.shares_kernel) == ("ssh", False)
    assert SshNodeAccess(path, shares_kernel="true").shares_kernel


async def test_a_node_missing_from_the_inventory_is_refused_before_connecting(files: Path) -> None:
    path = write(files, GOOD)
    access = SshNodeAccess(str(path))
    with pytest.raises(ValidationError) as err:
        await access.open(MemoryCluster(3), [NodeInfo("node-1"), NodeInfo("node-2"), NodeInfo("node-3")])
    assert str(err.value) == f"{path}: node 'node-3' is not in the inventory (have: node-1, node-2)"
    assert access.connects == 0


def test_the_command_line_quotes_every_word_and_adds_sudo_and_the_host_prefix(files: Path) -> None:
    access = SshNodeAccess(str(write(files, GOOD)))
    argv = ["tee", "--", "/proc/sys/x y", "$(reboot)", "a'b"]
    assert shlex.split(access.command("node-1", argv)) == argv
    assert access.command("node-1", argv, host=True) == access.command("node-1", argv)
    assert shlex.split(access.command("node-2", argv)) == ["sudo", "-n", "--", *argv]
    assert shlex.split(access.command("node-2", argv, host=True)) == [
        "sudo",
        "-n",
        "--",
        "nsenter",
        "--net=/proc/1/ns/net",
        "--",
        *argv,
    ]


def test_the_entry_point_and_secrets_in_the_journal(files: Path) -> None:
    assert load(NODE_ACCESS, "ssh") is SshNodeAccess
    spec = TestbedSpec("lab", "ssh", {}, {"inventory": "/x.toml", "key": "/k", "passphrase": "hunter2"})
    assert spec.to_json()["node_options"] == {
        "inventory": "/x.toml",
        "key": "<redacted>",
        "passphrase": "<redacted>",
    }
