"""`make bench` and `make soak`: the real services as processes, measured side by side."""
