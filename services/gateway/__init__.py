"""framebus gateway service."""
