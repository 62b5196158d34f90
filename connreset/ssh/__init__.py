"""Node access over SSH (``--node-access ssh --node-opt inventory=FILE``), with asyncssh.

- :mod:`connreset.ssh.inventory`: the TOML inventory, parsed into frozen attrs classes;
- :mod:`connreset.ssh.access`: :class:`SshNodeAccess`, one connection per node;
- :mod:`connreset.ssh.errors`: asyncssh's, the network's and sudo's errors as one-line messages.
"""

from connreset.ssh.access import SshNodeAccess
from connreset.ssh.inventory import Endpoint, Inventory, NodeEntry, load_inventory

__all__ = ["Endpoint", "Inventory", "NodeEntry", "SshNodeAccess", "load_inventory"]
