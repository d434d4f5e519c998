"""``tarifa manage createsuperuser``: Django's command, with the password rules of every other door
also for ``--noinput`` (issue 12, low).

Django validates the password only when it asks for it at the terminal; with ``--noinput`` it took
DJANGO_SUPERUSER_PASSWORD as it was, so ``Password1`` -- or ``a`` -- could open the back office as
superuser. Here that password goes through AUTH_PASSWORD_VALIDATORS (the seed's rules, similarity
to the user name and e-mail, common passwords) like ``tarifa createadmin`` and the password forms,
and a refused one stops the command with the rules it broke; nothing is created.

(It lives in ``tarifa.throttle``, the log-in security app, which is listed before
``django.contrib.auth`` in INSTALLED_APPS so that this command is the one Django finds.)
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tarifa import config


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        password = config.django_superuser("password")
        if not options["interactive"] and password is not None:
            model: Any = self.UserModel
            name = model.USERNAME_FIELD
            fields = {name: options.get(name) or (config.django_superuser(name) or "")}
            for field in model.REQUIRED_FIELDS:
                fields[field] = options.get(field) or (config.django_superuser(field) or "")
            user: Any = model(**fields)  # unsaved: for the similarity rule only
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(f"DJANGO_SUPERUSER_PASSWORD is refused: {'; '.join(exc.messages)}") from None
        super().handle(*args, **options)
