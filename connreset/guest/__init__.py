"""Kernels on demand: run an experiment or a sweep in a QEMU guest of another Linux kernel.

:mod:`connreset.guest.kernels` fetches and caches Debian kernel packages (never installed);
:mod:`connreset.guest.vm` boots a guest with virtme-ng (the host's root shared read-only, guest-only
overlays, no network device); :mod:`connreset.guest.remote` runs connreset's own CLI inside it and
re-emits its events on the host, live.
"""
