"""Parsers of venue messages into analytics rows; pure functions, no I/O (tested offline)."""
