"""Talking to Temporal: connecting, registering the namespace, starting session workflows."""
