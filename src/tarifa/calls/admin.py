from datetime import UTC, datetime
from typing import Any

from django.contrib import admin

from tarifa.admin_base import ReadOnlyAdmin
from tarifa.calls.models import CallRate, ConfigVersion, Refusal, Reservation


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("call_id", "switch", "customer", "account", "amount", "max_duration", "created_at", "expires_at")
    search_fields = ("call_id", "customer__company", "account__name")
    list_filter = ("switch",)


@admin.register(Refusal)
class RefusalAdmin(ReadOnlyAdmin):
    list_display = ("day", "customer", "reason", "count")
    list_filter = ("reason", "day")
    search_fields = ("customer__company", "reason")


def describe_scope(scope: str) -> str:
    """A CPS counter's scope as people name it. The scopes are written by the authorisation
    (``calls.authorize._cps_limits``): ``c:<customer id>``, ``d:sip:<SIP device id>``,
    ``d:ip:<IP device id>``, ``n:<connection id>``; anything else is shown as stored."""
    from tarifa.customers.models import Customer, IpDevice, SipDevice
    from tarifa.routing.models import Connection

    kinds: dict[str, tuple[str, Any]] = {
        "c:": ("Customer", Customer),
        "d:sip:": ("SIP device", SipDevice),
        "d:ip:": ("IP device", IpDevice),
        "n:": ("Connection", Connection),
    }
    for prefix, (label, model) in kinds.items():
        if scope.startswith(prefix) and scope[len(prefix) :].isdigit():
            found = model.objects.filter(pk=int(scope[len(prefix) :])).first()
            return f"{label} {found}" if found is not None else f"{label} #{scope[len(prefix) :]} (deleted)"
    return scope


@admin.register(CallRate)
class CallRateAdmin(ReadOnlyAdmin):
    list_display = ("scope_name", "second_utc", "count")
    search_fields = ("scope",)

    @admin.display(description="counted for", ordering="scope")
    def scope_name(self, obj: CallRate) -> str:
        return describe_scope(obj.scope)

    @admin.display(description="second (UTC)", ordering="second")
    def second_utc(self, obj: CallRate) -> str:
        return datetime.fromtimestamp(obj.second, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@admin.register(ConfigVersion)
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ("id", "version")
