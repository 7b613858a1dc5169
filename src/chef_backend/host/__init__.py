"""Helpers about the host a node runs on: its paths, files, addresses and HTTP checks."""
