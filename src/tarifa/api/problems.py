"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

CONTENT_TYPE = "application/problem+json"
UNAUTHORIZED = ("Unauthorized", "A valid API token is required (Authorization: Bearer <token>).")
UNPROCESSABLE = ("Unprocessable request", "Some fields were refused.")


class Problem(Exception):
    """Raise to answer with a problem document; ``errors`` lists field-level details."""

    def __init__(self, status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []


def body(path: str, status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None
         ) -> dict[str, Any]:
    """The problem document (also written by ``api.lean`` for the switch endpoints)."""
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "instance": path}
    if detail:
        doc["detail"] = detail
    if errors:
        doc["errors"] = errors
    return doc


def field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic errors as ``{"field", "reason"}``, the field named without ninja's "body"/"payload"."""
    return [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "payload")),
         "reason": e.get("msg", "invalid")}
        for e in errors
    ]


def problem(api: NinjaAPI, request: HttpRequest, status: int, title: str, detail: str = "",
            errors: list[dict[str, Any]] | None = None) -> HttpResponse:
    response = api.create_response(request, body(request.path, status, title, detail, errors), status=status)
    response["Content-Type"] = CONTENT_TYPE
    return response


def install(api: NinjaAPI) -> None:
    @api.exception_handler(Problem)
    def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem(api, request, exc.status, exc.title, exc.detail, exc.errors)

    @api.exception_handler(AuthenticationError)
    def _auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = problem(api, request, 401, *UNAUTHORIZED)
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(ValidationError)
    def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return problem(api, request, 422, *UNPROCESSABLE, field_errors(exc.errors))

    @api.exception_handler(HttpError)
    def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return problem(api, request, exc.status_code, str(exc) or "Error")

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        """A defect, not a refusal: logged with its traceback; the client gets a problem
        document without internals (never Django's HTML error page). Http404 and the others
        django-ninja knows keep their own handlers (the most specific class wins)."""
        import logging

        logging.getLogger("django.request").error("Internal Server Error: %s", request.path, exc_info=exc)
        return problem(api, request, 500, "Internal error",
                       "The request could not be completed; the error is logged on the server.")
