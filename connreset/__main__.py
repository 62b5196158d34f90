"""``python -m connreset``."""

import sys

try:
    from connreset.ui.cli import main
except KeyboardInterrupt:  # Ctrl-C while still importing: nothing has started
    sys.exit(130)

raise SystemExit(main())
