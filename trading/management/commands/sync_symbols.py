"""``manage.py sync_symbols --venue hyperliquid [--from-file meta.json]``: fill the symbol table
from the venue's metadata, through its adapter (or, offline, from a saved ``meta`` answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.exchanges import VenueError, hlformat
from trading.services import symbols_sync


class Command(BaseCommand):
    help = "Create or update the symbols of a venue from its metadata."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--venue", required=True, help="paper, hyperliquid, okx (any venue with an adapter)."
        )
        parser.add_argument(
            "--from-file",
            type=Path,
            default=None,
            help="A saved Hyperliquid `meta` answer (offline use).",
        )
        parser.add_argument(
            "--keep-missing",
            action="store_true",
            help="Do not deprecate symbols the venue no longer lists.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        venue: str = options["venue"]
        infos = None
        source = "the venue"
        if options["from_file"] is not None:
            path: Path = options["from_file"]
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read {path}: {exc}") from exc
            if not isinstance(raw, dict) or "universe" not in raw:
                raise CommandError(f"{path} is not a `meta` answer (no `universe`)")
            infos = hlformat.parse_meta(raw)
            source = str(path)
        try:
            result = symbols_sync(
                venue=venue, infos=infos, deactivate_missing=not options["keep_missing"]
            )
        except VenueError as exc:
            raise CommandError(f"{venue}: {exc.message}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{venue}: {result.created} created, {result.updated} updated, "
                f"{result.deactivated} deprecated (from {source})."
            )
        )
