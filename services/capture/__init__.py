"""framebus capture service."""
