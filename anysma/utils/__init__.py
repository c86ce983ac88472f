"""Helpers for old anysma user code."""
