"""``python -m connreset``."""

from connreset.cli import main

raise SystemExit(main())
