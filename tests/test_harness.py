"""The test harness's own promise: it can bring up PostgreSQL where none is running."""

import pytest

from tests.fixtures.databases import PostgresUnavailable, _postgres_bindir, _start_throwaway_cluster


@pytest.mark.skipif(_postgres_bindir() is None, reason="PostgreSQL binaries are not installed")
def test_a_throwaway_cluster_starts_serves_and_stops():
    server = _start_throwaway_cluster()
    assert not isinstance(server, PostgresUnavailable), server
    try:
        url = server.create_database(migrated=True)
        server.release_database(url, migrated=True)
    finally:
        server.close()
    assert not server.cluster_dir.exists()
