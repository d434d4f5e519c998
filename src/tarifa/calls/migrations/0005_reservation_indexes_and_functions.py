"""Authorisation: fewer writes and locks per call (calls/authorize.py, docs/authorization.md).

* ``calls_reservation`` loses the second index on ``customer_id`` and on ``account_id`` (their
  foreign keys index them already) and the database constraint of ``connection_id``: its check at
  commit share-locked the connection row, so every authorisation routed through one connection
  made the others queue on that row.
* ``tarifa_call_state`` (PostgreSQL) locks with ``FOR NO KEY UPDATE`` instead of ``FOR UPDATE``:
  CDR ingestion holds ``FOR KEY SHARE`` on the customers, accounts and connections of its
  batches, which ``FOR UPDATE`` would wait for; lockers of the same row still queue one after the
  other. It also locks the call's limited connections (in id order, after the balance rows) and
  reads their live reservations, so the transaction stays two statements when routes have limits.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

STATE = """
DROP FUNCTION IF EXISTS tarifa_call_state(bigint, bigint, boolean, text, timestamptz, text[], bigint);
CREATE OR REPLACE FUNCTION tarifa_call_state(
    p_customer bigint, p_account bigint, p_own boolean, p_device text, p_now timestamptz,
    p_scopes text[], p_second bigint, p_connections bigint[],
    OUT balance bigint, OUT credit_limit bigint, OUT billing_type text,
    OUT calls bigint, OUT reserved numeric, OUT account_calls bigint, OUT account_reserved numeric,
    OUT device_calls bigint, OUT shared_reserved numeric, OUT scopes text[], OUT counts integer[],
    OUT connections bigint[], OUT busy bigint[]
) LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    SELECT c.balance, c.credit_limit, c.billing_type INTO balance, credit_limit, billing_type
        FROM customers_customer c WHERE c.id = p_customer FOR NO KEY UPDATE;
    IF p_own THEN
        SELECT a.balance INTO balance FROM customers_account a WHERE a.id = p_account FOR NO KEY UPDATE;
    END IF;
    IF cardinality(p_connections) > 0 THEN
        PERFORM 1 FROM routing_connection n WHERE n.id = ANY(p_connections) ORDER BY n.id FOR NO KEY UPDATE;
        SELECT array_agg(r.connection_id), array_agg(r.n) INTO connections, busy
            FROM (SELECT x.connection_id, COUNT(*) AS n FROM calls_reservation x
                  WHERE x.connection_id = ANY(p_connections) AND x.expires_at >= p_now
                  GROUP BY x.connection_id) r;
    END IF;
    -- Each statement below sees what committed while this transaction waited for the locks.
    SELECT COUNT(*), COALESCE(SUM(r.amount), 0),
           COALESCE(SUM(CASE WHEN r.account_id = p_account THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.account_id = p_account THEN r.amount ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.device = p_device THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN r.own_balance THEN 0 ELSE r.amount END), 0)
        INTO calls, reserved, account_calls, account_reserved, device_calls, shared_reserved
        FROM calls_reservation r WHERE r.customer_id = p_customer AND r.expires_at >= p_now;
    IF cardinality(p_scopes) > 0 THEN
        SELECT array_agg(cr.scope::text), array_agg(cr.count) INTO scopes, counts
            FROM calls_callrate cr WHERE cr.scope = ANY(p_scopes) AND cr.second = p_second;
    END IF;
END
$fn$;
"""

DROP = "DROP FUNCTION IF EXISTS tarifa_call_state(bigint, bigint, boolean, text, timestamptz, text[], bigint, bigint[]);"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATE, params=None)


def restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
        previous = importlib.import_module("tarifa.calls.migrations.0004_authorize_functions")
        schema_editor.execute(previous.FUNCTIONS, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0004_authorize_functions'),
        ('routing', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='reservation',
            name='calls_reser_custome_defb12_idx',
        ),
        migrations.RemoveIndex(
            model_name='reservation',
            name='calls_reser_account_e65825_idx',
        ),
        migrations.AlterField(
            model_name='reservation',
            name='connection',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reservations', to='routing.connection'),
        ),
        migrations.RunPython(create, restore),
    ]
