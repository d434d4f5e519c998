"""Middleware of the web side: refusals that hold for every back-office page, security headers."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

Handler = Callable[[HttpRequest], HttpResponse]


class RefuseNulInBackOfficeQuery:
    """A back-office query parameter (search, filter, autocomplete term) with a NUL is refused by name.

    PostgreSQL cannot compare text with a NUL: a filter value carrying one became a ``DataError``
    and a 500 on every listing. Refused here, once, the listing shows again without the parameter
    and says which one was dropped and why — for our listings and Django's own (users, groups).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self._prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._prefix is None:
            self._prefix = reverse("admin:index")
        if request.path.startswith(self._prefix) and any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            if request.path == reverse("admin:autocomplete"):
                # A select widget's search as you type: nothing matches, nothing to explain.
                return JsonResponse({"results": [], "pagination": {"more": False}})
            return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest) -> HttpResponse:
        kept = request.GET.copy()
        for key, values in request.GET.lists():
            bad = [value for value in values if "\x00" in key or "\x00" in value]
            for value in bad:
                messages.error(
                    request, f"{key} {value!r} is refused: a search or filter may not contain a NUL character"
                )
            if bad:
                kept.pop(key, None)
        query = kept.urlencode()
        return HttpResponseRedirect(request.path + (f"?{query}" if query else ""))


#: Same-origin everything; no inline scripts. 'unsafe-eval' because the back office's theme (Unfold)
#: runs Alpine.js, which compiles its x-* attributes with the Function constructor; inline styles
#: because Unfold and Swagger UI set style attributes. Images and fonts may be data: URIs (icons).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicy:
    """Send the Content-Security-Policy header on every page that does not set its own.

    JSON answers (the API, problem details) get none: a browser renders no script from them, and
    the switch endpoints answered without Django (api/switch_endpoints.py) must read the same either way.

    Scripts, styles, images and fonts come only from Tarifa itself (its static files): an injected
    ``<script>`` — inline or from elsewhere — does not run, and no page may be framed.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "json" not in response.headers.get("Content-Type", ""):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
