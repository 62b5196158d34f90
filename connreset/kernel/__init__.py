"""What connreset knows of the Linux kernel: sysctl keys, conntrack's numbers, and the verbs
every node access gets (:class:`NodeKernel`)."""

from connreset.kernel.node import ExecResult, NodeIO, NodeKernel, Rule

__all__ = ["ExecResult", "NodeIO", "NodeKernel", "Rule"]
