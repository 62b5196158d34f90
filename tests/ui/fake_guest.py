"""Stands in for vng, QEMU and the guest in tests/ui/test_relay.py (a test double: no guest boots).

It does what :mod:`connreset.guest.inside` does, without a guest's kernel: it reads the
controller's request on stdin, takes its environment, announces itself with the READY line, and
runs connreset's command line in this process (the tests give it the test doubles' testbed);
``interrupt`` lines on stdin are a Ctrl-C for that run. Its exit code is the run's.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from connreset.guest.protocol import READY


def _listen() -> None:
    for line in sys.stdin:
        if line.strip() == "interrupt":
            print("fake guest: an interrupt", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGINT)


def main() -> int:
    request = json.loads(sys.stdin.readline())
    os.environ.update(request["env"])
    print(READY + json.dumps({"slowness": 1.0, "problem": "", "python_s": 0.0}), flush=True)
    if request["probe"]:
        return 0
    threading.Thread(target=_listen, daemon=True).start()
    from connreset.ui.cli import main as cli_main

    return cli_main(request["argv"])


if __name__ == "__main__":
    sys.exit(main())
