"""Relational store: the versioned SOP catalog and the append-only audit trail."""
