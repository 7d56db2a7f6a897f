"""Temporal activities: the side effects of work sessions."""
