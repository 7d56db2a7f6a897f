"""Process-level plumbing shared by the API and the worker: settings, Temporal connection."""
