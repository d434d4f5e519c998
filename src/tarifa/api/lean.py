"""The switch endpoints ``POST /api/v1/calls/authorize`` and ``POST /api/v1/calls/{call_id}/end``,
served without Django's middleware stack and without django-ninja's request machinery.

A softswitch asks on every call attempt, so these two endpoints are the hot path of the
platform. This module is their only implementation:

* ``authorize`` and ``end`` take the ``Authorization`` header, the body and the path and return
  (status, headers, body). They check the token (``auth.switch_identity``, cached), parse JSON
  the way django-ninja does, validate with the same pydantic schema that documents the endpoint
  (``calls.AuthorizeIn``), and answer with the fields of ``calls.AuthorizeOut`` or an RFC 9457
  problem document (``problems.body``) identical to the rest of the API.
* ``wsgi`` wraps the Django WSGI application (``tarifa.wsgi``, what ``tarifa serve`` runs): a POST to
  one of the two paths is answered here directly; every other request, and any request this
  module would not handle exactly as Django would (a host outside ALLOWED_HOSTS, a body above
  DATA_UPLOAD_MAX_MEMORY_SIZE, a SCRIPT_NAME), goes to Django.
* ``authorize_view`` and ``end_view`` are the same endpoints as Django views (listed in
  ``tarifa.urls`` before the ninja API), for the Django test client and any server that runs
  the Django application itself.

The django-ninja operations in ``api/calls.py`` stay declared for the OpenAPI document only.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable
from http.client import responses
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt
from ninja.responses import NinjaJSONEncoder
from pydantic import ValidationError

from tarifa.api import problems
from tarifa.api.auth import bearer_token, switch_identity
from tarifa.api.calls import AuthorizeIn, AuthorizeOut, RouteOut

AUTHORIZE_PATH = "/api/v1/calls/authorize"
END_PREFIX, END_SUFFIX = "/api/v1/calls/", "/end"
JSON = "application/json; charset=utf-8"

Answer = tuple[int, list[tuple[str, str]], bytes]

_OUT_FIELDS = tuple(AuthorizeOut.model_fields)  # the documented response, in its order
_ROUTE_FIELDS = tuple(RouteOut.model_fields)


def _security_headers() -> list[tuple[str, str]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to every API response."""
    headers = [("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper())]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


_SECURITY = _security_headers()


def _json(status: int, data: Any, content_type: str = JSON, extra: Iterable[tuple[str, str]] = ()) -> Answer:
    body = json.dumps(data, cls=NinjaJSONEncoder).encode()
    return status, [("Content-Type", content_type), *extra, ("Content-Length", str(len(body))), *_SECURITY], body


def _problem(path: str, status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None,
             extra: Iterable[tuple[str, str]] = ()) -> Answer:
    return _json(status, problems.body(path, status, title, detail, errors), problems.CONTENT_TYPE, extra)


def _unauthorized(path: str) -> Answer:
    return _problem(path, 401, *problems.UNAUTHORIZED, extra=[("WWW-Authenticate", "Bearer")])


def _guard(fn: Callable[..., Answer], *args: Any) -> Answer:
    """Unexpected errors: re-raised for Django's 500 handling, as django-ninja does (in DEBUG,
    the traceback as text/plain, as django-ninja does)."""
    if not settings.DEBUG:
        return fn(*args)
    try:
        return fn(*args)
    except Exception:
        import logging

        logging.getLogger("django").exception("error in %s", fn.__name__)
        body = traceback.format_exc().encode()
        return 500, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *_SECURITY], body


def payload(decision: Any, trace: bool) -> dict[str, Any]:
    """The response document of a decision: exactly the fields of ``AuthorizeOut``, each route
    with every field of ``RouteOut`` (absent ones null)."""
    out = {name: getattr(decision, name) for name in _OUT_FIELDS}
    out["routes"] = [{name: route.get(name) for name in _ROUTE_FIELDS} for route in decision.routes]
    if not trace:
        out["trace"] = None
    return out


def _authorize(authorization: str | None, body: bytes, path: str) -> Answer:
    from tarifa.calls.authorize import CallRequest, authorize_call

    token = bearer_token(authorization)
    identity = switch_identity(token) if token is not None else None
    if identity is None:
        return _unauthorized(path)
    if not body:
        return _problem(path, 422, *problems.UNPROCESSABLE, [{"field": "", "reason": "Field required"}])
    try:
        data = json.loads(body)
    except Exception as exc:  # as django-ninja: any parse failure is a 400
        return _problem(path, 400, "Cannot parse request body" + (f" ({exc})" if settings.DEBUG else ""))
    if not isinstance(data, dict):
        return _problem(path, 422, *problems.UNPROCESSABLE, [{"field": "", "reason": "Input should be a JSON object"}])
    try:
        request = AuthorizeIn.model_validate(data)
    except ValidationError as exc:
        return _problem(path, 422, *problems.UNPROCESSABLE, problems.field_errors(exc.errors()))
    pop = identity.switch_name
    decision = authorize_call(CallRequest(
        call_id=request.call_id, callee=request.callee, caller=request.caller, source_ip=request.source_ip,
        sip_user=request.sip_user, trunk=request.trunk, did=request.did, account_code=request.account_code,
        extension=request.extension, switch=pop, pop=pop,
    ), trace=request.trace)
    return _json(200, payload(decision, request.trace))


def _end(authorization: str | None, call_id: str, path: str) -> Answer:
    from tarifa.calls.authorize import end_call

    token = bearer_token(authorization)
    identity = switch_identity(token) if token is not None else None
    if identity is None:
        return _unauthorized(path)
    return _json(200, {"released": end_call(identity.switch_name, call_id)})


def authorize(authorization: str | None, body: bytes, path: str = AUTHORIZE_PATH) -> Answer:
    """``POST /api/v1/calls/authorize``: (status, headers, body)."""
    return _guard(_authorize, authorization, body, path)


def end(authorization: str | None, call_id: str, path: str) -> Answer:
    """``POST /api/v1/calls/{call_id}/end``: (status, headers, body)."""
    return _guard(_end, authorization, call_id, path)


# --- as Django views ---------------------------------------------------------------------------------


def _response(answer: Answer) -> HttpResponse:
    status, headers, body = answer
    response = HttpResponse(body, status=status)
    for name, value in headers:
        if name != "Content-Length":
            response[name] = value
    return response


def _not_allowed() -> HttpResponse:
    return HttpResponseNotAllowed(["POST"], content=b"Method not allowed")


@csrf_exempt
def authorize_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed()
    return _response(authorize(request.headers.get("Authorization"), request.body, request.path))


@csrf_exempt
def end_view(request: HttpRequest, call_id: str) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed()
    return _response(end(request.headers.get("Authorization"), call_id, request.path))


# --- in front of the Django WSGI application ------------------------------------------------------------


def _end_call_id(path: str) -> str | None:
    """The call id of an end path (Django's ``<call_id>``: one or more characters, no slash)."""
    if path.startswith(END_PREFIX) and path.endswith(END_SUFFIX):
        call_id = path[len(END_PREFIX):-len(END_SUFFIX)]
        if call_id and "/" not in call_id:
            return call_id
    return None


def wsgi(django_app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI application: the two switch endpoints here, everything else in ``django_app``."""
    from django.core.handlers.exception import response_for_exception
    from django.core.handlers.wsgi import WSGIRequest, get_path_info
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.http.request import split_domain_port, validate_host

    hosts: dict[str, bool] = {}

    def host_allowed(environ: dict[str, Any]) -> bool:
        """``HttpRequest.get_host()`` would not raise DisallowedHost (CommonMiddleware calls it)."""
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
            raw = environ["HTTP_X_FORWARDED_HOST"]
        elif "HTTP_HOST" in environ:
            raw = environ["HTTP_HOST"]
        else:
            return False  # SERVER_NAME and port: let Django decide
        known = hosts.get(raw)
        if known is None:
            allowed = settings.ALLOWED_HOSTS
            if settings.DEBUG and not allowed:
                allowed = [".localhost", "127.0.0.1", "[::1]"]
            domain, _port = split_domain_port(raw)
            known = bool(domain and validate_host(domain, allowed))
            if len(hosts) < 256:
                hosts[raw] = known
        return known

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("SCRIPT_NAME"):
            return django_app(environ, start_response)
        path = get_path_info(environ)
        call_id = None
        if path != AUTHORIZE_PATH:
            call_id = _end_call_id(path)
            if call_id is None:
                return django_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except (ValueError, TypeError):
            length = 0
        if (limit is not None and length > limit) or not host_allowed(environ):
            return django_app(environ, start_response)

        # Django's per-request housekeeping (its request_started / request_finished receivers),
        # done here directly at a fraction of the signals' cost: the query log starts empty, and a
        # connection past CONN_MAX_AGE or left broken is closed before and after the request. No
        # request signal is sent. (Inside an atomic block -- a test's transaction, as Django's test
        # client does -- the connection is left alone.)
        db = connections[DEFAULT_DB_ALIAS]
        if db.queries_logged:
            db.queries_log.clear()
        if not db.in_atomic_block:
            db.close_if_unusable_or_obsolete()
        try:
            authorization = environ.get("HTTP_AUTHORIZATION")
            try:
                if call_id is None:
                    body = environ["wsgi.input"].read(length) if length > 0 else b""
                    status, headers, content = authorize(authorization, body, path)
                else:
                    status, headers, content = end(authorization, call_id, path)
            except Exception as exc:  # Django's own answer: got_request_exception, log, handler500
                response = response_for_exception(WSGIRequest(environ), exc)
                status, content = response.status_code, response.content
                headers = [*response.items(), ("Content-Length", str(len(content)))]
                headers += [(k, v) for k, v in _SECURITY if not response.has_header(k)]
        finally:
            if not db.in_atomic_block:
                db.close_if_unusable_or_obsolete()
        start_response(f"{status} {responses.get(status, 'Unknown Status Code')}", headers)
        return [content]

    return application
