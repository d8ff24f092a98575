"""Analytics forms: the staff SQL console."""

from __future__ import annotations

from django import forms

from analytics.services.console import MAX_SQL_LENGTH


class SqlConsoleForm(forms.Form):
    sql = forms.CharField(
        label="Statement",
        max_length=MAX_SQL_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100, "spellcheck": "false"}),
        help_text="One SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement; runs read-only, "
        "with row and time limits, and is written to the audit log.",
    )
