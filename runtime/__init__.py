"""Process-level plumbing shared by the API and the worker: settings, logging, child processes."""
