"""The REST facade: authenticates, authorizes, and talks to Temporal and the database."""
