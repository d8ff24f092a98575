"""Analytics in the admin: the data-quality report and the read-only SQL console.

Both are ClickHouse-backed pages hung on unmanaged models (analytics.models), so they appear
in the admin index and follow Django permissions (view permission on each model); nothing can
be added, changed or deleted through them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from analytics import selectors, services
from analytics.buffer import STREAMS
from analytics.forms import SqlConsoleForm
from analytics.models import QualityReport, SqlConsole
from analytics.quality import REASON_LABELS
from config.errors import DomainError


class _PageAdmin(admin.ModelAdmin):
    """A single page instead of a change list: view only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "has_view_permission": True,
        }


@admin.register(QualityReport)
class QualityReportAdmin(_PageAdmin):
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if request.method == "POST":
            stream = request.POST.get("requeue", "")
            if stream in STREAMS:
                try:
                    moved = services.buffer_dead_letters_requeue(stream=stream, actor=request.user)
                    messages.success(request, f"{moved} {stream} batches put back in line.")
                except (DomainError, TimeoutError) as exc:
                    messages.error(request, str(exc))
            return HttpResponseRedirect(request.path)
        dataset = request.GET.get("dataset", "")
        reason = request.GET.get("reason", "")
        reason = reason if reason in REASON_LABELS else ""
        hours = 24
        report = selectors.quality_report(hours=hours, recent=0)
        report["recent"] = selectors.quarantined_rows(
            dataset=dataset[:64] or None, reason=reason or None, limit=100
        )
        context = {
            **self._context(request, "Data quality report"),
            "report": report,
            "dataset": dataset,
            "reason": reason,
        }
        return TemplateResponse(request, "admin/analytics/quality_report.html", context)


@admin.register(SqlConsole)
class SqlConsoleAdmin(_PageAdmin):
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = SqlConsoleForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = services.sql_console_run(
                    user=request.user,  # type: ignore[arg-type]
                    sql=form.cleaned_data["sql"],
                    request=request,
                )
            except DomainError as exc:
                form.add_error("sql", exc.message)
        context = {
            **self._context(request, "ClickHouse SQL console"),
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/analytics/sql_console.html", context)
