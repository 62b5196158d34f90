"""What the controller and the guest say to each other over the guest's console."""

READY = "@@connreset-guest "  # the line the guest announces itself with; the controller does not print it
