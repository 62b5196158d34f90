"""Tests of connreset.kubernetes, against an in-process test double of the API server."""
