"""framebus for algorithm authors: subscribe to camera frames, publish frames and results.

The services live in ``services/``; this package is what a program outside them imports.
"""
