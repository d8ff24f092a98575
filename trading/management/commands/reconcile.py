"""``manage.py reconcile [--agent-wallet ID ...]``: reconcile agent wallets with their venues
now (what the beat task does every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import NotFound
from trading import selectors
from trading.services import reconcile_agent_wallet


class Command(BaseCommand):
    help = "Compare agent wallets' positions and orders with the venue and repair differences."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--agent-wallet",
            action="append",
            dest="wallets",
            default=[],
            help="An agent wallet id (repeatable). Default: every wallet with "
            "open positions, orders in flight or recent trading.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ids = options["wallets"] or selectors.agent_wallet_ids_to_reconcile()
        if not ids:
            self.stdout.write("Nothing to reconcile.")
            return
        failed = 0
        for agent_wallet_id in ids:
            try:
                wallet = selectors.agent_wallet_for_system(agent_wallet_id=agent_wallet_id)
            except NotFound as exc:
                raise CommandError(f"{agent_wallet_id}: {exc.message}") from exc
            report = reconcile_agent_wallet(agent_wallet=wallet)
            line = (
                f"{wallet.addr} ({wallet.exchange}): {report.fills_applied} fills, "
                f"{report.positions_fixed} positions fixed, {report.orders_repaired} orders "
                f"repaired, {report.orders_resubmitted} resubmitted, {report.orders_failed} "
                f"failed, {report.unknown_venue_orders} unknown at the venue"
            )
            if report.error:
                failed += 1
                self.stderr.write(f"{line}; error: {report.error}")
            else:
                self.stdout.write(line)
        if failed:
            raise CommandError(f"{failed} wallet(s) could not be reconciled")
