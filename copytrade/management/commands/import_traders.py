"""``manage.py import_traders FILE.csv|json [--dry-run]``: create or update traders in bulk.

CSV with a header ``address,alias,exchange,tags`` (tags separated by ``;``), or JSON: a list
of objects with those keys. Every row is checked first; one bad row and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import DomainError
from copytrade.services import traders_import, traders_import_file


class Command(BaseCommand):
    help = "Import traders from a CSV or JSON file (address, alias, exchange, tags)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check the file only")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        content = path.read_text(encoding="utf-8")
        try:
            if options["dry_run"]:
                import csv
                import io
                import json

                rows = (
                    json.loads(content)
                    if path.suffix.lower() == ".json"
                    else list(csv.DictReader(io.StringIO(content)))
                )
                result = traders_import(rows=rows, dry_run=True)
            else:
                result = traders_import_file(content=content, name=path.name)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if result.errors:
            for error in result.errors:
                self.stderr.write(error)
            raise CommandError(f"{len(result.errors)} bad rows; nothing imported")
        if options["dry_run"]:
            self.stdout.write(self.style.SUCCESS("the file is valid"))
            return
        self.stdout.write(
            self.style.SUCCESS(f"{result.created} traders created, {result.updated} updated")
        )
