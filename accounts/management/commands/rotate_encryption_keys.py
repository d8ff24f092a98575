"""Re-encrypt every secret at rest under the first key of TANDEM_ENCRYPTION_KEYS.

Rolling a key: put the new key first in TANDEM_ENCRYPTION_KEYS (keep the old one after it,
so existing ciphertext still opens), deploy, run this command, then drop the old key. The
command is safe to run while the site is up and safe to run again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.services import encryption_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt agent-wallet keys and exchange credentials under the newest key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        report = encryption_keys_rotate(
            batch_size=max(1, options["batch_size"]),
            progress=(lambda line: self.stdout.write(line)) if options["verbosity"] > 1 else None,
        )
        for label, count in report.rotated.items():
            self.stdout.write(
                f"{label}: {count} re-encrypted, {report.already_current[label]} already "
                f"current, {report.skipped_locked[label]} busy (run again to finish them)"
            )
        if any(report.skipped_locked.values()):
            self.stdout.write(self.style.WARNING("Some rows were busy; run the command again."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Done: {report.total_rotated} row(s)."))
