"""What people see: the command line, the console's lines and tables, and reports.

(The live TUI is its own package, :mod:`connreset.tui`.)"""
