"""The hub's PostgreSQL fixtures (tests/sync/conftest.py) for the hardening suites."""

from tests.sync.conftest import hub_app, hub_database, hub_process, hub_template, postgres_url

__all__ = ["hub_app", "hub_database", "hub_process", "hub_template", "postgres_url"]
