"""What the controller and the guest say to each other over the guest's console."""

READY = "@@connreset-guest "  # the line the guest announces itself with; the controller does not print it
#: A standing guest's end of one command, on its stdout and then its stderr: ``DONE`` + exit code.
DONE = "@@connreset-done "
#: A controller's line on the guest's stdin: a Ctrl-C for the command under way.
INTERRUPT = "interrupt"
