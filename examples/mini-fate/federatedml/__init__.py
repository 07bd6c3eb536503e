"""Miniature federatedml package: enough to check the python tree is packaged."""

VERSION = "1.0.2"
