"""Peer operations for compat/: URLs, versions, config (filled in by the compat work)."""
