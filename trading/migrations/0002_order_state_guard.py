"""The order state machine, guarded in PostgreSQL as well as in the services.

* ``orders_guard`` (BEFORE INSERT/UPDATE) refuses: an order created in any status but
  ``pending``; a status change that is not one of the legal moves below (a frozen copy of
  ``trading.models.orders.ORDER_TRANSITIONS``, compiled into the function); a filled quantity
  that goes down; a change to what was ordered (user, symbol, side, quantity, cloid).
* ``orders_history`` (AFTER INSERT/UPDATE) appends an ``order_events`` row for the creation and
  for every status change, so no path, not even raw SQL, can move an order without a trace.

A refusal raises SQLSTATE 23514 (check_violation), which Django reports as IntegrityError.
"""

from django.db import migrations

# Frozen copy of the state machine as it was when this migration was written: a migration must
# not change meaning when the code changes later. A later change to ORDER_TRANSITIONS needs a
# new migration (tests/test_models.py compares this list with the code). The pairs live in the
# function itself rather than in a table: test runs flush tables (TransactionTestCase), and a
# guard that an empty table turns into "nothing is legal" would be a trap.
TRANSITIONS = [
    ("pending", "submitted"),
    ("pending", "failed"),
    ("pending", "cancelled"),
    ("submitted", "partial"),
    ("submitted", "filled"),
    ("submitted", "cancelled"),
    ("submitted", "failed"),
    ("partial", "filled"),
    ("partial", "cancelled"),
]


GUARD_SQL = """
CREATE OR REPLACE FUNCTION orders_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' THEN
            RAISE EXCEPTION 'order % must be created pending, not %', NEW.id, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status || '>' || NEW.status) <> ALL (ARRAY[{legal}]) THEN
        RAISE EXCEPTION 'illegal order status transition % -> % (order %)',
            OLD.status, NEW.status, OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.filled_quantity < OLD.filled_quantity THEN
        RAISE EXCEPTION 'filled quantity of order % cannot go down (% -> %)',
            OLD.id, OLD.filled_quantity, NEW.filled_quantity USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.user_id IS DISTINCT FROM OLD.user_id
       OR NEW.symbol_id IS DISTINCT FROM OLD.symbol_id
       OR NEW.side IS DISTINCT FROM OLD.side
       OR NEW.quantity IS DISTINCT FROM OLD.quantity
       OR NEW.cloid IS DISTINCT FROM OLD.cloid THEN
        RAISE EXCEPTION 'order % cannot change what was ordered', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER orders_guard
    BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_guard();

CREATE OR REPLACE FUNCTION orders_history() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO order_events (order_id, kind, from_status, to_status, details, created_at)
        VALUES (NEW.id, 'created', '', NEW.status, '{}'::jsonb, clock_timestamp());
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO order_events (order_id, kind, from_status, to_status, details, created_at)
        VALUES (NEW.id, 'transition', OLD.status, NEW.status,
                jsonb_build_object('filled_quantity', NEW.filled_quantity), clock_timestamp());
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER orders_history
    AFTER INSERT OR UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_history();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS orders_history ON orders;
DROP FUNCTION IF EXISTS orders_history();
DROP TRIGGER IF EXISTS orders_guard ON orders;
DROP FUNCTION IF EXISTS orders_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial")]

    operations = [
        migrations.RunSQL(
            GUARD_SQL.replace("{legal}", ", ".join(f"'{a}>{b}'" for a, b in TRANSITIONS)),
            DROP_SQL,
        ),
    ]
