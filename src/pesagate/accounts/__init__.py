"""Dashboard accounts: people, their roles in businesses (owner, developer, viewer), the
operator flag, server-side sessions and login throttling. Owns `users`, `memberships` and
`dashboard_sessions`; it needs only businesses (pesagate.merchants) below it."""
