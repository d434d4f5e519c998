"""Authorisation in one round trip when the call is well within its limits (calls/authorize.py,
docs/authorization.md "The serving path").

* ``tarifa_call_authorize`` (PostgreSQL) reads the call's state exactly as ``tarifa_call_state``
  does (it calls it: locks first, then fresh reads), and, when that state leaves room for the call
  as the application planned it — every concurrent-call and CPS count under its limit, the
  available funds at least the cost of the longest allowed call, a candidate connection with room
  — counts the call in its CPS scopes and inserts its reservation, all in the one statement. It
  returns the state either way (and the reservation and its connection when it made one), so the
  application still takes its decision from the state with its own code; when the state does not
  leave that room (a refusal, or funds for a shorter call only) nothing is written and the
  application decides as before.
* Both reservation functions commit without waiting for the WAL flush
  (``synchronous_commit = off`` for their transaction only): a reservation is a hold on a call in
  progress, not money; a server crash loses at most the last few hundred milliseconds of holds.
* ``tarifa_call_state`` reads by index always (``enable_seqscan = off`` for the function): a
  session's plans made while the tables were empty scanned them whole on every later call.
* ``calls_reservation`` loses the database constraints of ``customer_id`` and ``account_id`` (their
  checks at commit read both rows again for every call) and the indexes of ``account_id`` and
  ``device`` (counted within the customer's reservations, which stay indexed) and of
  ``expires_at`` (only the worker's sweep reads by expiry, over the calls in progress). Deleting
  a customer or an account still deletes its reservations (Django's ``CASCADE``).
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

AUTHORIZE = """
CREATE OR REPLACE FUNCTION tarifa_call_authorize(
    p_customer bigint, p_account bigint, p_own boolean, p_device text, p_now timestamptz,
    p_scopes text[], p_second bigint, p_connections bigint[],
    p_limits integer[], p_scope_limits integer[], p_amount bigint,
    p_routes bigint[], p_route_channels integer[], p_route_cps integer[],
    p_switch text, p_call_id text, p_max_duration integer, p_expires timestamptz,
    OUT balance bigint, OUT credit_limit bigint, OUT billing_type text,
    OUT calls bigint, OUT reserved numeric, OUT account_calls bigint, OUT account_reserved numeric,
    OUT device_calls bigint, OUT shared_reserved numeric, OUT scopes text[], OUT counts integer[],
    OUT connections bigint[], OUT busy bigint[], OUT reservation bigint, OUT connection bigint
) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    i integer;
    used bigint;
    cps_scope text;
BEGIN
    SELECT * INTO balance, credit_limit, billing_type, calls, reserved, account_calls, account_reserved,
                  device_calls, shared_reserved, scopes, counts, connections, busy
        FROM tarifa_call_state(p_customer, p_account, p_own, p_device, p_now, p_scopes, p_second, p_connections);
    IF billing_type IS NULL OR balance IS NULL THEN
        RETURN;  -- no such customer (or own-balance account): the application decides
    END IF;
    -- Room for the call as planned? Any "no" leaves the decision to the application.
    IF (p_limits[1] IS NOT NULL AND calls >= p_limits[1])
            OR (p_limits[2] IS NOT NULL AND account_calls >= p_limits[2])
            OR (p_limits[3] IS NOT NULL AND device_calls >= p_limits[3]) THEN
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_scope_limits), 0) LOOP
        IF p_scope_limits[i] IS NOT NULL
                AND coalesce(counts[array_position(scopes, p_scopes[i])], 0) >= p_scope_limits[i] THEN
            RETURN;
        END IF;
    END LOOP;
    IF p_amount IS NOT NULL AND balance - (CASE WHEN p_own THEN account_reserved ELSE shared_reserved END)
            + (CASE WHEN billing_type = 'postpaid' THEN credit_limit ELSE 0 END) < p_amount THEN
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_routes), 0) LOOP
        used := coalesce(busy[array_position(connections, p_routes[i])], 0);
        CONTINUE WHEN p_route_channels[i] IS NOT NULL AND used >= p_route_channels[i];
        cps_scope := 'n:' || p_routes[i];
        CONTINUE WHEN p_route_cps[i] IS NOT NULL
            AND coalesce(counts[array_position(scopes, cps_scope)], 0) >= p_route_cps[i];
        connection := p_routes[i];
        IF p_route_cps[i] IS NULL THEN
            cps_scope := NULL;
        END IF;
        EXIT;
    END LOOP;
    IF coalesce(cardinality(p_routes), 0) > 0 AND connection IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT tarifa_call_reserve(
        CASE WHEN connection IS NOT NULL AND cps_scope IS NOT NULL THEN p_scopes[1:cardinality(p_scope_limits)] || cps_scope
             ELSE p_scopes[1:cardinality(p_scope_limits)] END,
        p_second, p_switch, p_call_id, p_customer, p_account, p_own, connection, p_device,
        coalesce(p_amount, 0), p_max_duration, p_now, p_expires) INTO reservation;
END
$fn$;
"""

RESERVE = """
CREATE OR REPLACE FUNCTION tarifa_call_reserve(
    p_scopes text[], p_second bigint, p_switch text, p_call_id text, p_customer bigint, p_account bigint,
    p_own boolean, p_connection bigint, p_device text, p_amount bigint, p_max_duration integer,
    p_created timestamptz, p_expires timestamptz
) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    held bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF cardinality(p_scopes) > 0 THEN
        INSERT INTO calls_callrate (scope, second, count) SELECT s, p_second, 1 FROM unnest(p_scopes) AS s
            ON CONFLICT (scope, second) DO UPDATE SET count = calls_callrate.count + 1;
    END IF;
    INSERT INTO calls_reservation (switch, call_id, customer_id, account_id, own_balance, connection_id, device,
                                   amount, max_duration, created_at, expires_at)
        VALUES (p_switch, p_call_id, p_customer, p_account, p_own, p_connection, p_device, p_amount,
                p_max_duration, p_created, p_expires)
        RETURNING id INTO held;
    RETURN held;
END
$fn$;
"""

# The reads of tarifa_call_state always by index. Its plans are kept per database session; planned
# while the reservations and CPS counters were empty (a quiet night, a fresh start), they scanned
# the whole table on every call for as long as the session lived, which doubled the database's
# CPU per authorisation once the calls in progress were counted in thousands.
STATE_BY_INDEX = """
ALTER FUNCTION tarifa_call_state(bigint, bigint, boolean, text, timestamptz, text[], bigint, bigint[])
    SET enable_seqscan = off;
"""
STATE_DEFAULT = """
ALTER FUNCTION tarifa_call_state(bigint, bigint, boolean, text, timestamptz, text[], bigint, bigint[])
    RESET enable_seqscan;
"""

DROP = """
DROP FUNCTION IF EXISTS tarifa_call_authorize(bigint, bigint, boolean, text, timestamptz, text[], bigint, bigint[],
    integer[], integer[], bigint, bigint[], integer[], integer[], text, text, integer, timestamptz);
"""


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESERVE, params=None)
        schema_editor.execute(AUTHORIZE, params=None)
        schema_editor.execute(STATE_BY_INDEX, params=None)


def restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATE_DEFAULT, params=None)
        schema_editor.execute(DROP, params=None)
        previous = importlib.import_module("tarifa.calls.migrations.0004_authorize_functions")
        reserve = previous.FUNCTIONS[previous.FUNCTIONS.index("CREATE OR REPLACE FUNCTION tarifa_call_reserve"):]
        schema_editor.execute(reserve, params=None)


def drop_orphans(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.db.models import Exists, OuterRef

    reservation = apps.get_model("calls", "Reservation")
    account, customer = apps.get_model("customers", "Account"), apps.get_model("customers", "Customer")
    reservation.objects.filter(~Exists(account.objects.filter(pk=OuterRef("account_id")))
                               | ~Exists(customer.objects.filter(pk=OuterRef("customer_id")))).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0005_reservation_indexes_and_functions'),
        ('customers', '0003_customer_time_zone'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='reservation',
            name='calls_reser_device_769fd0_idx',
        ),
        migrations.AlterField(
            model_name='reservation',
            name='account',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='reservations', to='customers.account'),
        ),
        migrations.AlterField(
            model_name='reservation',
            name='customer',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='reservations', to='customers.customer'),
        ),
        # backwards: reservations of deleted accounts or customers go before the constraints return
        migrations.RunPython(migrations.RunPython.noop, drop_orphans),
        migrations.AlterField(
            model_name='reservation',
            name='expires_at',
            field=models.DateTimeField(verbose_name='expires at'),
        ),
        migrations.RunPython(create, restore),
    ]
