"""Miniature toy example."""

print("toy example")
