"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

CONTENT_TYPE = "application/problem+json"
UNAUTHORIZED = ("Unauthorized", "A valid API token is required (Authorization: Bearer <token>).")
UNPROCESSABLE = ("Unprocessable request", "Some fields were refused.")
_USES = {
    "switch": "call authorisation and CDR push",
    "customer": "a customer's own data (its CDRs)",
    "operator": "the management API",
}


def wrong_token(have: str, need: str) -> tuple[str, str]:
    """The title and detail of a 403 for a valid token of the other kind (a customer's token on a
    switch endpoint, a switch's token on a customer's)."""
    return ("Wrong kind of token", f"This is a {have} token; this operation needs a {need} token (for {_USES[need]}).")


class Problem(Exception):
    """Raise to answer with a problem document; ``errors`` lists field-level details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []
        self.headers = headers or {}


def body(
    path: str, status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The problem document (also written by ``api.switch_endpoints`` for the switch endpoints)."""
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "instance": path}
    if detail:
        doc["detail"] = detail
    if errors:
        doc["errors"] = errors
    return doc


# pydantic's error types, as the rule a refused value broke (the house style names field, value and rule)
_RULES: dict[str, str] = {
    "string_type": "must be text (a JSON string)",
    "bool_type": "must be true or false (a JSON boolean)",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "decimal_parsing": "must be a decimal number",
    "datetime_type": "must be a date and time in ISO 8601, e.g. 2026-03-02T10:00:00Z",
    "datetime_parsing": "must be a date and time in ISO 8601, e.g. 2026-03-02T10:00:00Z",
    "datetime_from_date_parsing": "must be a date and time in ISO 8601, e.g. 2026-03-02T10:00:00Z",
    "date_parsing": "must be a date in ISO 8601, e.g. 2026-03-02",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "extra_forbidden": "is not a field of this request",
}
_WHERE = ("body", "payload", "query", "path", "header", "cookie", "filters")  # django-ninja's locations


def refusal(field: str, error: dict[str, Any]) -> str:
    """One pydantic error as ``<field> is required`` or ``<field> <value> is refused: <rule>``."""
    from tarifa.core.cdr import shown

    kind = error.get("type", "")
    name = field or "request body"
    if kind == "missing":
        return f"{name} is required"
    ctx = error.get("ctx") or {}
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        rule = "must not be empty" if least == 1 else f"must be at least {least} characters"
    elif kind == "string_too_long":
        rule = f"must be at most {ctx.get('max_length')} characters"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        rule = str(error.get("msg", "")).replace("Input should be", "must be")
    elif kind in ("value_error", "assertion_error") and "error" in ctx:
        rule = str(ctx["error"])
        if field and rule.startswith(f"{field} "):
            return rule  # the validator named field and value itself (e.g. ``parse_ip``, shared with CDRs)
    else:
        rule = _RULES.get(kind) or str(error.get("msg", "invalid")).replace("Input should be", "must be")
    value = error.get("input")
    literal = (
        {None: "null", True: "true", False: "false"}.get(value) if value is None or isinstance(value, bool) else None
    )
    return f"{name} {literal or shown(value)} is refused: {rule}"


def field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic errors (django-ninja's or the switch endpoints') as ``{"field", "reason"}``: the field
    named without ninja's locations ("body", "query", ...), the reason in the house style."""
    out = []
    for e in errors:
        field = ".".join(str(p) for p in e.get("loc", ()) if p not in _WHERE)
        out.append({"field": field, "reason": refusal(field, e)})
    return out


class Api(NinjaAPI):
    """django-ninja's API, keeping the refused value in each validation error: ninja drops pydantic's
    ``input``, which the house style names (``limit 'abc' is refused: must be a whole number``)."""

    def validation_error_from_error_contexts(self, error_contexts: list[Any]) -> ValidationError:
        inputs = [
            e.get("input")
            for context in error_contexts
            for e in context.pydantic_validation_error.errors(include_url=False)
        ]
        error = super().validation_error_from_error_contexts(error_contexts)
        if len(error.errors) == len(inputs):  # one input per error, in order; else name no value at all
            for item, value in zip(error.errors, inputs, strict=True):
                item["input"] = value
        return error


def problem(
    api: NinjaAPI,
    request: HttpRequest,
    status: int,
    title: str,
    detail: str = "",
    errors: list[dict[str, Any]] | None = None,
) -> HttpResponse:
    response = api.create_response(request, body(request.path, status, title, detail, errors), status=status)
    response["Content-Type"] = CONTENT_TYPE
    return response


def install(api: NinjaAPI) -> None:
    @api.exception_handler(Problem)
    def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        response = problem(api, request, exc.status, exc.title, exc.detail, exc.errors)
        for name, value in exc.headers.items():
            response[name] = value
        return response

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
        return problem(
            api,
            request,
            500,
            "Internal error",
            "The request could not be completed; the error is logged on the server.",
        )
