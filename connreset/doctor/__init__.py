"""``connreset doctor``: is my cluster exposed? A read-only check of real nodes.

:func:`doctor` reads each node's kernel, kube-proxy's mode and rules, ``be_liberal``, the
conntrack table's count, counters, hash size and timeouts over a window, and judges each against
what the project measured (:mod:`connreset.doctor.data`), with the fix in kube-proxy's terms.
"""

from connreset.doctor.checks import evaluate, recommended_max
from connreset.doctor.facts import NodeFacts, gather
from connreset.doctor.model import Check, DoctorReport, NodeReport, Verdict, schema
from connreset.doctor.run import WINDOW, doctor, doctor_plan, doctor_sync

__all__ = [
    "WINDOW",
    "Check",
    "DoctorReport",
    "NodeFacts",
    "NodeReport",
    "Verdict",
    "doctor",
    "doctor_plan",
    "doctor_sync",
    "evaluate",
    "gather",
    "recommended_max",
    "schema",
]
