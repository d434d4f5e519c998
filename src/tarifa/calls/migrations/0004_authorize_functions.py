"""PostgreSQL functions for the call-authorisation transaction (calls/authorize.py).

``tarifa_call_state`` locks the balance row the call draws on (the customer's, and the account's
when it has its own balance) and then reads, with a fresh snapshot per statement (PL/pgSQL in
READ COMMITTED), the customer's live reservations and the CPS counters of the given scopes: one
round trip instead of two or three, and plans that stay prepared in the server session.
``tarifa_call_reserve`` counts the call in its CPS scopes and inserts its reservation.

The functions name the tables ``customers_customer``, ``customers_account``, ``calls_reservation``
and ``calls_callrate``: a migration that renames or changes those columns must replace them.
On other databases (SQLite) nothing is created: authorize.py keeps its plain statements there.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION tarifa_call_state(
    p_customer bigint, p_account bigint, p_own boolean, p_device text, p_now timestamptz,
    p_scopes text[], p_second bigint,
    OUT balance bigint, OUT credit_limit bigint, OUT billing_type text,
    OUT calls bigint, OUT reserved numeric, OUT account_calls bigint, OUT account_reserved numeric,
    OUT device_calls bigint, OUT shared_reserved numeric, OUT scopes text[], OUT counts integer[]
) LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    SELECT c.balance, c.credit_limit, c.billing_type INTO balance, credit_limit, billing_type
        FROM customers_customer c WHERE c.id = p_customer FOR UPDATE;
    IF p_own THEN
        SELECT a.balance INTO balance FROM customers_account a WHERE a.id = p_account FOR UPDATE;
    END IF;
    -- Each statement below sees what committed while this transaction waited for the lock.
    SELECT COUNT(*), COALESCE(SUM(r.amount), 0),
           COALESCE(SUM(CASE WHEN r.account_id = p_account THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.account_id = p_account THEN r.amount ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.device = p_device THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.own_balance THEN 0 ELSE r.amount END), 0)
        INTO calls, reserved, account_calls, account_reserved, device_calls, shared_reserved
        FROM calls_reservation r WHERE r.customer_id = p_customer AND r.expires_at >= p_now;
    SELECT array_agg(cr.scope::text), array_agg(cr.count) INTO scopes, counts
        FROM calls_callrate cr WHERE cr.scope = ANY(p_scopes) AND cr.second = p_second;
END
$fn$;

CREATE OR REPLACE FUNCTION tarifa_call_reserve(
    p_scopes text[], p_second bigint, p_switch text, p_call_id text, p_customer bigint, p_account bigint,
    p_own boolean, p_connection bigint, p_device text, p_amount bigint, p_max_duration integer,
    p_created timestamptz, p_expires timestamptz
) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    held bigint;
BEGIN
    INSERT INTO calls_callrate (scope, second, count) SELECT s, p_second, 1 FROM unnest(p_scopes) AS s
        ON CONFLICT (scope, second) DO UPDATE SET count = calls_callrate.count + 1;
    INSERT INTO calls_reservation (switch, call_id, customer_id, account_id, own_balance, connection_id, device,
                                   amount, max_duration, created_at, expires_at)
        VALUES (p_switch, p_call_id, p_customer, p_account, p_own, p_connection, p_device, p_amount,
                p_max_duration, p_created, p_expires)
        RETURNING id INTO held;
    RETURN held;
END
$fn$;
"""

DROP = """
DROP FUNCTION IF EXISTS tarifa_call_state(bigint, bigint, boolean, text, timestamptz, text[], bigint);
DROP FUNCTION IF EXISTS tarifa_call_reserve(text[], bigint, text, text, bigint, bigint, boolean, bigint, text, bigint,
                                            integer, timestamptz, timestamptz);
"""


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS, params=None)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("calls", "0003_config_version_row")]
    operations = [migrations.RunPython(create, drop)]
