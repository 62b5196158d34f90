"""Kubernetes: a cluster backend and the kubectl-debug node access, on the official client."""
