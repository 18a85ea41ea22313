"""The durable job runner: jobs are rows, claimed under a lease, run at least once."""
