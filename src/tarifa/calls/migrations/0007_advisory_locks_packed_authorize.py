"""Authorisation with less work per call on PostgreSQL (calls/authorize.py, docs/authorization.md
"The serving path").

* The calls of one customer queue on a transaction-level advisory lock instead of a row lock on
  the customer (and on an own-balance account, and on the limited connections): a row lock
  writes the row and its WAL on every call attempt, an advisory lock lives in shared memory only.
  What the row lock also gave, a state that cannot change between the balance and the
  reservations, now comes from reading them in one statement (one snapshot): CDR ingestion
  charges a call and releases its reservation in one transaction, so the read sees both or
  neither. Lock keys: ``(1952543329, customer id)`` for the balance, ``(1952543330, connection
  id)`` for a limited connection (ids reduced modulo 2^31; two ids that meet only wait for each
  other), taken customer first, then connections in key order.
* ``tarifa_call_authorize`` takes its numbers in one ``bigint[]`` and returns the state in one
  ``bigint[]`` (plus the billing type and the CPS scopes read): the driver adapts 5 parameters
  and 3 result columns instead of 18 and 15, a third of the client's CPU per call.

``p`` of ``tarifa_call_authorize`` (1-based, as in SQL):
  1 customer id, 2 account id, 3 own balance (1/0), 4 now (µs since the epoch), 5 the second
  counted for CPS, 6 amount to reserve in minor units (NULL: a free call), 7 max duration (s),
  8 expiry of the reservation (µs since the epoch), 9-11 concurrent-call limits of the customer,
  the account and the device (NULL: none), 12 k = the number of CPS scopes with limits, then
  their k limits (the first k entries of ``p_scopes``), then m = the number of limited
  connections and their m ids (ascending; ``p_scopes`` continues with their ``n:<id>`` scopes),
  then, for each candidate route in routing order, (connection id, max channels, max CPS).
``state`` returned: balance, credit limit, calls, reserved, account calls, account reserved,
  device calls, shared reserved, reservation id, connection id (1-10), then one count per entry
  of ``scopes``, then (connection id, live calls) pairs of the limited connections.
"""

import importlib

from django.db import migrations

STATE = """
CREATE OR REPLACE FUNCTION tarifa_call_state(
    p_customer bigint, p_account bigint, p_own boolean, p_device text, p_now timestamptz,
    p_scopes text[], p_second bigint, p_connections bigint[],
    OUT balance bigint, OUT credit_limit bigint, OUT billing_type text,
    OUT calls bigint, OUT reserved numeric, OUT account_calls bigint, OUT account_reserved numeric,
    OUT device_calls bigint, OUT shared_reserved numeric, OUT scopes text[], OUT counts integer[],
    OUT connections bigint[], OUT busy bigint[]
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(1952543329, (p_customer % 2147483648)::integer);
    IF cardinality(p_connections) > 0 THEN
        PERFORM pg_advisory_xact_lock(1952543330, k) FROM (
            SELECT DISTINCT (n % 2147483648)::integer AS k FROM unnest(p_connections) AS n) AS keys ORDER BY k;
    END IF;
    -- One statement, one snapshot, taken after the locks: balance and reservations agree.
    SELECT CASE WHEN p_own THEN a.balance ELSE c.balance END, c.credit_limit, c.billing_type,
           r.calls, r.reserved, r.account_calls, r.account_reserved, r.device_calls, r.shared_reserved,
           k.scopes, k.counts, b.connections, b.busy
        INTO balance, credit_limit, billing_type, calls, reserved, account_calls, account_reserved,
             device_calls, shared_reserved, scopes, counts, connections, busy
        FROM (SELECT 1) AS one
        LEFT JOIN customers_customer c ON c.id = p_customer
        LEFT JOIN customers_account a ON p_own AND a.id = p_account
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS calls, COALESCE(SUM(x.amount), 0) AS reserved,
                   COALESCE(SUM(CASE WHEN x.account_id = p_account THEN 1 ELSE 0 END), 0) AS account_calls,
                   COALESCE(SUM(CASE WHEN x.account_id = p_account THEN x.amount ELSE 0 END), 0) AS account_reserved,
                   COALESCE(SUM(CASE WHEN x.device = p_device THEN 1 ELSE 0 END), 0) AS device_calls,
                   COALESCE(SUM(CASE WHEN x.own_balance THEN 0 ELSE x.amount END), 0) AS shared_reserved
            FROM calls_reservation x WHERE x.customer_id = p_customer AND x.expires_at >= p_now) AS r
        CROSS JOIN LATERAL (
            SELECT array_agg(cr.scope::text) AS scopes, array_agg(cr.count) AS counts
            FROM calls_callrate cr
            WHERE cardinality(p_scopes) > 0 AND cr.scope = ANY(p_scopes) AND cr.second = p_second) AS k
        CROSS JOIN LATERAL (
            SELECT array_agg(y.connection_id) AS connections, array_agg(y.n) AS busy
            FROM (SELECT x.connection_id, COUNT(*) AS n FROM calls_reservation x
                  WHERE cardinality(p_connections) > 0 AND x.connection_id = ANY(p_connections)
                    AND x.expires_at >= p_now
                  GROUP BY x.connection_id) AS y) AS b;
END
$fn$;
"""

AUTHORIZE = """
CREATE OR REPLACE FUNCTION tarifa_call_authorize(
    p bigint[], p_scopes text[], p_switch text, p_call_id text, p_device text,
    OUT state bigint[], OUT billing_type text, OUT scopes text[]
) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    k integer := p[12];
    m integer := p[13 + k];
    routes integer := (cardinality(p) - 13 - k - m) / 3;
    first_route integer := 14 + k + m;  -- the first route's triple
    own boolean := p[3] = 1;
    at_now timestamptz := timestamptz 'epoch' + p[4] * interval '1 microsecond';
    s record;
    counts integer[];
    i integer;
    used bigint;
    connection bigint;
    cps_scope text;
    reservation bigint;
BEGIN
    SELECT * INTO s FROM tarifa_call_state(p[1], p[2], own, p_device, at_now, p_scopes, p[5],
                                             coalesce(p[14 + k: 13 + k + m], '{}'));
    billing_type := s.billing_type;
    scopes := s.scopes;
    counts := s.counts;
    state := ARRAY[s.balance, s.credit_limit, s.calls, s.reserved::bigint, s.account_calls,
                   s.account_reserved::bigint, s.device_calls, s.shared_reserved::bigint, NULL, NULL]
             || coalesce(counts::bigint[], '{}');
    FOR i IN 1 .. coalesce(cardinality(s.connections), 0) LOOP
        state := state || ARRAY[s.connections[i], s.busy[i]];
    END LOOP;
    IF s.billing_type IS NULL OR s.balance IS NULL THEN
        RETURN;  -- no such customer (or own-balance account): the application decides
    END IF;
    -- Room for the call as planned? Any "no" leaves the decision to the application.
    IF (p[9] IS NOT NULL AND s.calls >= p[9]) OR (p[10] IS NOT NULL AND s.account_calls >= p[10])
            OR (p[11] IS NOT NULL AND s.device_calls >= p[11]) THEN
        RETURN;
    END IF;
    FOR i IN 1 .. k LOOP
        IF p[12 + i] IS NOT NULL AND coalesce(counts[array_position(scopes, p_scopes[i])], 0) >= p[12 + i] THEN
            RETURN;
        END IF;
    END LOOP;
    IF p[6] IS NOT NULL AND s.balance - (CASE WHEN own THEN s.account_reserved ELSE s.shared_reserved END)
            + (CASE WHEN s.billing_type = 'postpaid' THEN s.credit_limit ELSE 0 END) < p[6] THEN
        RETURN;
    END IF;
    FOR i IN 0 .. routes - 1 LOOP
        used := coalesce(s.busy[array_position(s.connections, p[first_route + 3 * i])], 0);
        CONTINUE WHEN p[first_route + 3 * i + 1] IS NOT NULL AND used >= p[first_route + 3 * i + 1];
        cps_scope := 'n:' || p[first_route + 3 * i];
        CONTINUE WHEN p[first_route + 3 * i + 2] IS NOT NULL
            AND coalesce(counts[array_position(scopes, cps_scope)], 0) >= p[first_route + 3 * i + 2];
        connection := p[first_route + 3 * i];
        IF p[first_route + 3 * i + 2] IS NULL THEN
            cps_scope := NULL;
        END IF;
        EXIT;
    END LOOP;
    IF routes > 0 AND connection IS NULL THEN
        RETURN;
    END IF;
    reservation := tarifa_call_reserve(
        CASE WHEN cps_scope IS NOT NULL THEN p_scopes[1:k] || cps_scope ELSE p_scopes[1:k] END,
        p[5], p_switch, p_call_id, p[1], p[2], own, connection, p_device, coalesce(p[6], 0), p[7]::integer, at_now,
        timestamptz 'epoch' + p[8] * interval '1 microsecond');
    state[9] := reservation;
    state[10] := connection;
END
$fn$;
"""

DROP = "DROP FUNCTION IF EXISTS tarifa_call_authorize(bigint[], text[], text, text, text);"


def _previous(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"tarifa.calls.migrations.{name}")


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_previous("0006_one_trip_authorize").DROP, params=None)
        for sql in (STATE, AUTHORIZE):  # tarifa_call_reserve stays as migration 0006 made it
            schema_editor.execute(sql, params=None)


def restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    """The functions of migrations 0005 and 0006 (row locks, the 18-parameter authorisation)."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
        before = _previous("0006_one_trip_authorize")
        schema_editor.execute(_previous("0005_reservation_indexes_and_functions").STATE, params=None)
        for sql in (before.STATE_BY_INDEX, before.AUTHORIZE):
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0006_one_trip_authorize'),
    ]

    operations = [
        migrations.RunPython(create, restore),
    ]
