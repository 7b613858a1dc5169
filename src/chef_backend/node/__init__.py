"""Rendering a node: every file it runs from, its secret files and its TLS certificate."""
