"""Temporal workflows and the domain model they carry (sandbox-safe: stdlib only)."""
