"""Prometheus metrics: the families a server records (families.py), one metered call's
timeline (watch.py) and `GET /metrics` (exposition.py). Traces are bytespike/traces.py."""
