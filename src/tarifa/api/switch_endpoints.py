"""The switch endpoints ``POST /api/v1/calls/authorize`` and ``POST /api/v1/calls/{call_id}/end``,
served without Django's middleware stack and without django-ninja's request machinery.

A softswitch asks on every call attempt, so these two endpoints are the hot path of the
platform. This module is their only implementation:

* ``authorize`` and ``end`` take the ``Authorization`` header, the body and the path and return
  (status, headers, body). They check the token (``auth.switch_identity``, cached), parse JSON
  the way django-ninja does, validate with the same pydantic schema that documents the endpoint
  (``call_schemas.AuthorizeIn``), and answer with the fields of ``call_schemas.AuthorizeOut`` or an RFC 9457
  problem document (``problems.body``) identical to the rest of the API.
* ``wsgi`` wraps the Django WSGI application (``tarifa.wsgi``, what ``tarifa serve`` runs): a POST to
  one of the two paths is answered here directly; every other request, and any request this
  module would not handle exactly as Django would (a host outside ALLOWED_HOSTS, a SCRIPT_NAME),
  goes to Django. Every request body, on any path, is read within a size bound and by a bounded
  number of threads (``api/bodies.py``) before the application sees it -- on the switch paths only
  after the token was found valid -- so slow clients cannot hold the threads that answer health and
  authorisation; and only TARIFA_THREADS requests per worker run the application at once.
* ``authorize_view`` and ``end_view`` are the same endpoints as Django views (listed in
  ``tarifa.urls`` before the ninja API), for the Django test client and any server that runs
  the Django application itself.

The django-ninja operations in ``api/calls.py`` stay declared for the OpenAPI document only.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Iterable
from http.client import responses
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt
from ninja.responses import NinjaJSONEncoder
from pydantic import ValidationError

from tarifa.api import bodies, problems
from tarifa.api.auth import SwitchIdentity, bearer_token, switch_identity
from tarifa.api.call_schemas import AuthorizeIn, AuthorizeOut, RouteOut

AUTHORIZE_PATH = "/api/v1/calls/authorize"
END_PREFIX, END_SUFFIX = "/api/v1/calls/", "/end"
JSON = "application/json; charset=utf-8"
SWITCH_BODY_MAX = 64 * 1024  # an authorisation request is under 2 KB; anything much larger is refused unread
CDRS_PATH = "/api/v1/cdrs"
PUBLIC_API = ("/api/v1/health", "/api/v1/docs", "/api/v1/openapi.json")  # the API paths that need no token
LOGIN_PATH = "/admin/login/"
#: payment-gateway callbacks carry no token (a signature over the body instead): counted by address
WEBHOOKS_PREFIX = "/api/v1/payments/webhooks/"
WEBHOOK_BODY_MAX = 64 * 1024  # api/payments.py MAX_WEBHOOK_BYTES
LOGIN_BODY_MAX = 16 * 1024  # the log-in form (user name, password, CSRF token) is well under 1 KB

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


def _problem(
    path: str,
    status: int,
    title: str,
    detail: str = "",
    errors: list[dict[str, Any]] | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> Answer:
    return _json(status, problems.body(path, status, title, detail, errors), problems.CONTENT_TYPE, extra)


def _unauthorized(path: str) -> Answer:
    return _problem(path, 401, *problems.UNAUTHORIZED, extra=[("WWW-Authenticate", "Bearer")])


def _not_switch(path: str, authorization: str | None) -> Answer:
    """A request to a switch endpoint whose token is no switch's: 403 for a customer's token (the
    wrong kind, said so), 401 for anything else. Only on the way to a refusal, so the database
    look-up it may need costs the hot path nothing."""
    from tarifa.api.auth import token_kind

    token = bearer_token(authorization)
    kind = token_kind(token) if token is not None else None
    if kind in ("customer", "operator"):
        return _problem(path, 403, *problems.wrong_token(kind, "switch"))
    return _unauthorized(path)


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


def identify(authorization: str | None) -> SwitchIdentity | None:
    """The switch an ``Authorization`` header value names, or None (checked before any body is read)."""
    token = bearer_token(authorization)
    return switch_identity(token) if token is not None else None


def _parse(body: bytes, path: str) -> dict[str, Any] | Answer:
    """The request document, or the problem that refuses it (naming what is wrong and where)."""
    if not body:
        return _problem(
            path, 422, *problems.UNPROCESSABLE, [{"field": "", "reason": problems.refusal("", {"type": "missing"})}]
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (character {exc.pos})"
        return _problem(
            path, 400, "Cannot parse request body", f"The request body is {reason}.", [{"field": "", "reason": reason}]
        )
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8, UTF-16 or UTF-32 text: {exc.reason} at byte {exc.start}"
        return _problem(
            path, 400, "Cannot parse request body", f"The request body is {reason}.", [{"field": "", "reason": reason}]
        )
    except RecursionError:
        reason = "nested too deeply to be a request document"
        return _problem(
            path, 400, "Cannot parse request body", f"The request body is {reason}.", [{"field": "", "reason": reason}]
        )
    if not isinstance(data, dict):
        return _problem(
            path,
            422,
            *problems.UNPROCESSABLE,
            [{"field": "", "reason": problems.refusal("", {"type": "dict_type", "input": data})}],
        )
    return data


def _decide(identity: SwitchIdentity, body: bytes, path: str) -> Answer:
    from tarifa.calls.authorize import CallRequest, authorize_call

    data = _parse(body, path)
    if not isinstance(data, dict):
        return data
    try:
        request = AuthorizeIn.model_validate(data)
    except ValidationError as exc:
        return _problem(path, 422, *problems.UNPROCESSABLE, problems.field_errors(exc.errors()))
    pop = identity.switch_name
    decision = authorize_call(
        CallRequest(
            call_id=request.call_id,
            callee=request.callee,
            caller=request.caller,
            source_ip=request.source_ip,
            sip_user=request.sip_user,
            trunk=request.trunk,
            did=request.did,
            account_code=request.account_code,
            extension=request.extension,
            switch=pop,
            pop=pop,
        ),
        trace=request.trace,
    )
    return _json(200, payload(decision, request.trace))


def _authorize(authorization: str | None, body: bytes, path: str) -> Answer:
    identity = identify(authorization)
    if identity is None:
        return _not_switch(path, authorization)
    return _decide(identity, body, path)


def _released(identity: SwitchIdentity, call_id: str) -> Answer:
    from tarifa.calls.authorize import end_call

    return _json(200, {"released": end_call(identity.switch_name, call_id)})


def _end(authorization: str | None, call_id: str, path: str) -> Answer:
    identity = identify(authorization)
    if identity is None:
        return _not_switch(path, authorization)
    return _released(identity, call_id)


def authorize(authorization: str | None, body: bytes, path: str = AUTHORIZE_PATH) -> Answer:
    """``POST /api/v1/calls/authorize``: (status, headers, body)."""
    return _guard(_authorize, authorization, body, path)


def end(authorization: str | None, call_id: str, path: str) -> Answer:
    """``POST /api/v1/calls/{call_id}/end``: (status, headers, body)."""
    return _guard(_end, authorization, call_id, path)


def refused(path: str, refusal: bodies.Refusal) -> Answer:
    """A body not read (too large, cut off, no reader free): the connection is closed after the
    answer, since what is left of the body on it is unknown."""
    extra = [("Connection", "close")]
    if refusal.status == 503:
        extra.append(("Retry-After", "1"))
    return _problem(path, refusal.status, refusal.title, refusal.detail, extra=extra)


# --- as Django views ---------------------------------------------------------------------------------


def _response(answer: Answer) -> HttpResponse:
    status, headers, body = answer
    response = HttpResponse(body, status=status)
    for name, value in headers:
        if name not in ("Content-Length", "Connection"):  # a WSGI application may not set hop-by-hop headers
            response[name] = value
    return response


def _not_allowed() -> HttpResponse:
    return HttpResponseNotAllowed(["POST"], content=b"Method not allowed")


@csrf_exempt
def authorize_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed()
    return _response(_guard(_authorize_request, request))


def _authorize_request(request: HttpRequest) -> Answer:
    """As the WSGI path: the token first, then the announced size, then the body."""
    identity = identify(request.headers.get("Authorization"))
    if identity is None:
        return _not_switch(request.path, request.headers.get("Authorization"))
    length = bodies.announced(request.META)
    if length is not None and length > SWITCH_BODY_MAX:
        return refused(request.path, bodies.too_large(length, SWITCH_BODY_MAX))
    return _decide(identity, request.body, request.path)


@csrf_exempt
def end_view(request: HttpRequest, call_id: str) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed()
    return _response(end(request.headers.get("Authorization"), call_id, request.path))


# --- in front of the Django WSGI application ------------------------------------------------------------


def _end_call_id(path: str) -> str | None:
    """The call id of an end path (Django's ``<call_id>``: one or more characters, no slash)."""
    if path.startswith(END_PREFIX) and path.endswith(END_SUFFIX):
        call_id = path[len(END_PREFIX) : -len(END_SUFFIX)]
        if call_id and "/" not in call_id:
            return call_id
    return None


def _staff_user(environ: dict[str, Any]) -> int | None:
    """The id of the active staff user whose session the request's cookie names, or None -- checked
    as Django's ``auth.get_user`` does (session, user, password hash), before any body is read."""
    from importlib import import_module
    from types import SimpleNamespace

    from django.contrib.auth import get_user
    from django.http.cookie import parse_cookie

    key = parse_cookie(environ.get("HTTP_COOKIE", "")).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]
    if user.is_authenticated and user.is_active and user.is_staff:
        return int(user.pk)
    return None


def _to_log_in(path: str) -> Answer:
    """A back-office POST without a staff session: the log-in page, at once, its body unread (so the
    connection is closed after the answer)."""
    from urllib.parse import quote

    location = f"{LOGIN_PATH}?next={quote(path)}"
    return 302, [("Location", location), ("Content-Length", "0"), ("Connection", "close"), *_SECURITY], b""


def _django_answer(environ: dict[str, Any], exc: Exception) -> Answer:
    """Django's own answer to an exception (got_request_exception, log, handler500)."""
    from django.core.handlers.exception import response_for_exception
    from django.core.handlers.wsgi import WSGIRequest

    response = response_for_exception(WSGIRequest(environ), exc)
    content = response.content
    headers = [*response.items(), ("Content-Length", str(len(content)))]
    headers += [(k, v) for k, v in _SECURITY if not response.has_header(k)]
    return response.status_code, headers, content


def admit(environ: dict[str, Any], path: str, body_max: int) -> tuple[Answer | None, str, int]:
    """Before a byte of a body is read: who sends it (the key its reader is counted under, see
    ``bodies.Slots``) and its size limit -- or the answer that refuses it unread. An API path
    that needs a token needs a valid one (POST /api/v1/cdrs a switch's); a back-office POST
    other than the log-in form needs a staff session (else the log-in page, at once); the
    log-in form is small; a switch endpoint needs a switch's token (its body is small too). Everyone
    else is counted by client address. Also called by the ASGI front (``tarifa.front``) before it waits
    for the rest of a body that did not come at once."""
    from django.db import DEFAULT_DB_ALIAS, connections

    from tarifa.throttle.service import address_of

    db = connections[DEFAULT_DB_ALIAS]
    if not db.in_atomic_block:
        db.close_if_unusable_or_obsolete()
    if environ.get("REQUEST_METHOD") == "POST" and (path == AUTHORIZE_PATH or _end_call_id(path) is not None):
        authorization = environ.get("HTTP_AUTHORIZATION")
        identity = identify(authorization)
        if identity is None:
            return _not_switch(path, authorization), "", 0
        return None, f"token {identity.token_id}", SWITCH_BODY_MAX
    if path.startswith(WEBHOOKS_PREFIX):
        return None, f"address {address_of(environ)}", min(body_max, WEBHOOK_BODY_MAX)
    if path.startswith("/api/") and path.rstrip("/") not in PUBLIC_API:
        authorization = environ.get("HTTP_AUTHORIZATION")
        token = bearer_token(authorization)
        if token is None:
            return _unauthorized(path), "", 0
        if path == CDRS_PATH and environ.get("REQUEST_METHOD") == "POST":
            identity = switch_identity(token)
            if identity is None:
                return _not_switch(path, authorization), "", 0
            return None, f"token {identity.token_id}", body_max
        from tarifa.api.models import ApiToken

        found = ApiToken.find(token)
        if found is None:
            return _unauthorized(path), "", 0
        return None, f"token {found.pk}", body_max
    if path == LOGIN_PATH:
        return None, f"address {address_of(environ)}", min(body_max, LOGIN_BODY_MAX)
    if path.startswith("/admin/"):
        user = _staff_user(environ)
        if user is None:
            return _to_log_in(path), "", 0
        return None, f"user {user}", body_max
    return None, f"address {address_of(environ)}", body_max


def wsgi(django_app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI application: the two switch endpoints here, everything else in ``django_app``."""
    from django.core.handlers.wsgi import get_path_info
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

    from tarifa import config

    # Only TARIFA_THREADS of the worker's threads run the application at once (more would contend for
    # the GIL and the database); the others (TARIFA_WAITING_THREADS, see tarifa serve) may wait for
    # slow clients' bodies -- at most that many at once (api/bodies.py) -- while health and
    # authorisation still find a thread.
    gate = threading.Semaphore(config.threads())
    waiting = config.waiting_threads()
    switch_slots, other_slots = bodies.Slots(max(1, waiting // 2)), bodies.Slots(max(1, waiting - waiting // 2))
    body_max = config.body_max_bytes()

    def answer(
        start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], content: bytes
    ) -> list[bytes]:
        start_response(f"{status} {responses.get(status, 'Unknown Status Code')}", headers)
        return [content]

    def to_django(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Django, with the request body (if any) already read within its bounds."""
        if environ.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ:
            path = get_path_info(environ)
            try:
                turned_away, key, limit = admit(environ, path, body_max)
            except Exception as exc:  # noqa: BLE001 - the database is down, say: Django's own answer
                return answer(start_response, *_django_answer(environ, exc))
            if turned_away is not None:
                return answer(start_response, *turned_away)
            got = bodies.read(environ, other_slots, limit, key)
            if isinstance(got, bodies.Refusal):
                return answer(start_response, *refused(get_path_info(environ), got))
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = got[0], str(got[1])
        with gate:
            return django_app(environ, start_response)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("SCRIPT_NAME"):
            return to_django(environ, start_response)
        path = get_path_info(environ)
        call_id = None
        if path != AUTHORIZE_PATH:
            call_id = _end_call_id(path)
            if call_id is None:
                return to_django(environ, start_response)
        if not host_allowed(environ):
            return to_django(environ, start_response)

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
            try:
                # The token first (cached; no body is read for a caller without one), then the body
                # within its bounds, then the decision inside the gate.
                identity = identify(environ.get("HTTP_AUTHORIZATION"))
                if identity is None:
                    status, headers, content = _not_switch(path, environ.get("HTTP_AUTHORIZATION"))
                elif call_id is not None:  # the body of an end request is not used, and not read
                    with gate:
                        status, headers, content = _guard(_released, identity, call_id)
                else:
                    got = bodies.read(environ, switch_slots, SWITCH_BODY_MAX, f"token {identity.token_id}")
                    if isinstance(got, bodies.Refusal):
                        status, headers, content = refused(path, got)
                    else:
                        with gate:
                            status, headers, content = _guard(_decide, identity, got[0].read(), path)
            except Exception as exc:  # noqa: BLE001 - Django's own answer: got_request_exception, log, handler500
                status, headers, content = _django_answer(environ, exc)
        finally:
            if not db.in_atomic_block:
                db.close_if_unusable_or_obsolete()
        return answer(start_response, status, headers, content)

    return application
