"""Command-line interface: ``attnpotts <subcommand>``; each subcommand is a thin adapter module."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
