"""framebus viewer service."""
