"""Enrol a TOTP device for a staff member from the command line (first admin, or a reset).

Prints the otpauth:// URI (and a QR code in the terminal) to scan with an authenticator app.
The device is confirmed at once: whoever runs this has shell access to production already.
"""

from __future__ import annotations

import io
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services import audit_log_record


class Command(BaseCommand):
    help = "Create (or with --reset, replace) the TOTP device of a staff member."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--reset", action="store_true", help="Delete existing devices first.")
        parser.add_argument("--no-qr", action="store_true", help="Print the URI only.")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff account with email {email}.")
        with transaction.atomic():
            existing = TOTPDevice.objects.filter(user=user)
            if existing.filter(confirmed=True).exists() and not options["reset"]:
                raise CommandError(f"{email} already has a device; use --reset to replace it.")
            existing.delete()
            device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)
            audit_log_record(
                action="staff_totp_enrol",
                actor_type="system",
                resource_type="user",
                resource_id=user.pk,
                new_values={"device": device.name, "reset": bool(options["reset"])},
                metadata={"via": "manage.py staff_totp_setup"},
            )
        uri = device.config_url
        self.stdout.write(f"otpauth URI for {email}:\n{uri}")
        if not options["no_qr"]:
            import qrcode

            qr = qrcode.QRCode(border=1)
            qr.add_data(uri)
            out = io.StringIO()
            qr.print_ascii(out=out)
            self.stdout.write(out.getvalue())
