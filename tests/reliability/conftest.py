"""Reliability tests reuse the integration plumbing (broker, worker processes, clients)."""

from tests.integration.conftest import fraud_cluster  # noqa: F401
