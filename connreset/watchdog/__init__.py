"""The node watchdog: a dead man's switch that restores a node when its controller stops renewing.

:mod:`connreset.watchdog.agent` is the watchdog itself (standalone, copied to the node);
:mod:`connreset.watchdog.link` is how a controller reaches one: in process on this machine (the
lab), or through a node access's exec (SSH, ``docker exec``).
"""

from connreset.watchdog.link import ExecLink, LocalLink, WatchdogLink, WatchdogUnavailable

__all__ = ["ExecLink", "LocalLink", "WatchdogLink", "WatchdogUnavailable"]
