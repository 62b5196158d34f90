"""Node access into kind nodes through the ``docker`` CLI (``--node-access docker``).

- :mod:`connreset.docker.options`: the factory's options, validated into a frozen attrs class;
- :mod:`connreset.docker.engine`: the ``docker`` CLI, run as a subprocess (honours ``DOCKER_HOST``);
- :mod:`connreset.docker.errors`: the CLI's and the engine's failures as one-line messages;
- :mod:`connreset.docker.nodes`: kind node containers, found by their cluster label;
- :mod:`connreset.docker.helper`: the privileged helper container in the host's network namespace;
- :mod:`connreset.docker.sampler`: one shell per node answering conntrack samples;
- :mod:`connreset.docker.access`: :class:`DockerNodeAccess`, composing the above.
"""

from connreset.docker.access import DockerNodeAccess
from connreset.docker.nodes import CLUSTER_LABEL, ROLE_LABEL, KindNode
from connreset.docker.options import DockerOptions

__all__ = ["CLUSTER_LABEL", "ROLE_LABEL", "DockerNodeAccess", "DockerOptions", "KindNode"]
