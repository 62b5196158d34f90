"""What conntrack entries cost, read from the kernel's /proc/slabinfo text."""

from __future__ import annotations

import pytest

from connreset.errors import BackendError
from connreset.steps.records import slab_cost

SLABINFO = """\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables ...
nf_conntrack_expect      0      0    208   19    1 : tunables    0    0    0 : slabdata      0      0      0
nf_conntrack         176    176    256   16    1 : tunables    0    0    0 : slabdata     11     11      0
"""


def test_the_entry_size_is_as_packed_in_the_slabs_pages() -> None:
    assert slab_cost(SLABINFO) == (256, 176, 256.0)
    assert slab_cost(SLABINFO.replace("256   16    1", "320   25    2")) == (320, 176, 8192 / 25)


def test_a_kernel_without_the_cache_says_so() -> None:
    with pytest.raises(BackendError, match="no nf_conntrack cache"):
        slab_cost(SLABINFO.replace("nf_conntrack ", "other_cache "))
