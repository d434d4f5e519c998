"""The account-settings groups of seed 001, in its order, each field with a line on what it does.

Only the fields: the validation is the model's and ``customers.forms.AccountForm``'s, the same
as the back office's (one validation for every door).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUPS", "Group", "group_named"]


@dataclass(frozen=True)
class Group:
    slug: str
    title: str
    intro: str
    fields: tuple[tuple[str, str], ...]  # (model field, what it does)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.fields]


GROUPS: tuple[Group, ...] = (
    Group(
        "routing",
        "Account routing",
        "The routes used for your domestic, international and toll-free calls.",
        (
            (
                "domestic_route",
                "Value: the lowest price, caller ID not always passed. Premium: better quality, "
                "caller ID passed, a little dearer.",
            ),
            ("international_route", "Value or Premium for calls abroad; caller ID is never guaranteed abroad."),
            ("tollfree_route", "The route for toll-free calls: Value (free) or Premium (better quality)."),
            (
                "tollfree_carrier",
                "Which carrier ends toll-free calls: the server's default, always an American "
                "carrier, or always a Canadian one.",
            ),
        ),
    ),
    Group(
        "restrictions",
        "Account restrictions",
        "What this account may call. Calls outside these are refused before they start.",
        (
            ("allow_411", "Lets the account call 411 directory assistance (charged per call)."),
            ("allow_international", "Off: every call abroad is refused. Off for new accounts."),
            ("allow_premium_rate", "Premium-rate numbers are where toll fraud goes: leave off unless you need them."),
            ("max_call_time_domestic", "Calls at home longer than this are hung up. Empty: no limit of its own."),
            ("max_call_time_international", "Calls abroad longer than this are hung up. Empty: no limit of its own."),
            (
                "international_rate_cap",
                "A call abroad whose per-minute rate is above this is not connected. Empty: no cap.",
            ),
            (
                "allowed_countries",
                "The countries calls may go to, chosen by region; none chosen allows every "
                "country. International calls must also be allowed above.",
            ),
        ),
    ),
    Group(
        "general",
        "General",
        "The settings used when you make or receive calls.",
        (
            ("name", "The name of this account in your lists and call history."),
            ("e911_caller_id", "The caller ID sent on a 911 call when the caller's number is not a 911-enabled DID."),
            (
                "dialing_mode",
                "North America: 10 or 11 digits, 011 or 00 before international numbers. "
                "E.164: the country code first.",
            ),
            ("caller_id_number", "The caller ID sent when your device sends none. Leave empty if your PBX sets it."),
            ("voicemail_enabled", "Voicemail for the main account."),
            ("music_on_hold", "What the other party hears while you hold the call."),
        ),
    ),
    Group(
        "security",
        "Security",
        "Who may place calls on this account. The portal password is changed on the profile page.",
        (
            ("sip_password", "The password your device registers with. Leave empty to keep the current one."),
            ("ip_restriction", "Calls are allowed only from these addresses or ranges. Empty: any address."),
            ("pop_restriction", "Calls are allowed only through these points of presence. None chosen: any."),
        ),
    ),
    Group(
        "inbound",
        "Inbound settings",
        "How calls to your numbers reach this account.",
        (
            ("inbound_protocol", "The protocol your DIDs' calls are sent with; SIP is recommended."),
            ("device_type", "The kind of device that answers this account's calls."),
        ),
    ),
    Group(
        "notifications",
        "Notifications",
        "E-mails about this account.",
        (
            (
                "balance_threshold",
                "When the balance falls below this amount (1 to 200), an e-mail is sent. "
                "Empty: no e-mail (not recommended).",
            ),
            ("notification_emails", "Where the balance e-mails go; several addresses separated by commas."),
        ),
    ),
    Group(
        "did",
        "Default DID routing",
        "What each new DID you order starts with (each DID can be changed later).",
        (
            ("default_did_plan", "The plan new DIDs are charged by (monthly fee and inbound calls)."),
            ("cnam_lookup", "Looks up the caller's name for US and Canadian numbers."),
            ("did_pop", "The server your device is registered with, where new DIDs deliver their calls."),
        ),
    ),
    Group(
        "advanced",
        "Advanced",
        "For advanced users: if unsure, keep the defaults.",
        (
            ("nat", "Yes if your device is behind NAT; when unsure, yes."),
            ("dtmf_mode", "How key presses are sent; use the same mode on your device."),
            ("allowed_codecs", "The codecs calls may use. None chosen: allow all (recommended)."),
            ("encrypted_sip", "Encrypts signalling (SIP-TLS) and media (SRTP); your device must be set up for it."),
            ("max_expiry", "The longest registration, 60 to 3600 seconds."),
            (
                "rtp_timeout",
                "Seconds of silence before a call not on hold is ended, 1 to 3600, at most the "
                "hold time-out. Empty: 60.",
            ),
            (
                "rtp_hold_timeout",
                "Seconds of silence before a call on hold is ended, 1 to 3600, at least the time-out. Empty: 600.",
            ),
        ),
    ),
)


def group_named(slug: str) -> Group | None:
    return next((g for g in GROUPS if g.slug == slug), None)
