"""Database guards of the copy engine's bookkeeping.

* ``copy_slots_orders_insert`` / ``copy_slots_orders_update`` (statement-level, with transition
  tables, so a bulk COPY of ten thousand orders costs one aggregated upsert, not ten thousand):
  keep ``copy_slots.committed_quantity`` equal to the signed sum, over the slot's copy orders,
  of their *expected* quantity -- the full quantity while an order is pending, submitted or
  partially filled, its filled quantity once it is final. Every path that writes an order
  (the engine's bulk path, ``order_create``, execution, reconciliation, raw SQL) therefore
  keeps the follower's attributable position exact, and a refused or cancelled order gives
  its quantity back the moment it ends.
* ``strategy_versions_immutable``: a version, once written, is never changed.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION copy_slots_orders_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO copy_slots (strategy_id, trader_id, symbol_id, base_quantity,
                            committed_quantity, remainder, updated_at)
    SELECT n.strategy_id, n.source_trader_id, n.symbol_id, 0,
           SUM(CASE WHEN n.side = 'buy' THEN n.quantity ELSE -n.quantity END), 0, now()
      FROM copy_new_orders n
     WHERE n.strategy_id IS NOT NULL AND n.source_trader_id IS NOT NULL
     GROUP BY n.strategy_id, n.source_trader_id, n.symbol_id
    ON CONFLICT (strategy_id, trader_id, symbol_id) DO UPDATE
       SET committed_quantity = copy_slots.committed_quantity + EXCLUDED.committed_quantity,
           updated_at = now();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER copy_slots_orders_insert
    AFTER INSERT ON orders
    REFERENCING NEW TABLE AS copy_new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION copy_slots_orders_insert();

CREATE OR REPLACE FUNCTION copy_slots_orders_update() RETURNS trigger AS $$
BEGIN
    WITH changes AS (
        SELECT n.strategy_id, n.source_trader_id, n.symbol_id,
               SUM(CASE WHEN n.side = 'buy' THEN 1 ELSE -1 END * (
                   (CASE WHEN n.status IN ('pending', 'submitted', 'partial')
                         THEN n.quantity ELSE n.filled_quantity END)
                 - (CASE WHEN o.status IN ('pending', 'submitted', 'partial')
                         THEN o.quantity ELSE o.filled_quantity END)
               )) AS delta
          FROM copy_new_orders n
          JOIN copy_old_orders o ON o.id = n.id
         WHERE n.strategy_id IS NOT NULL AND n.source_trader_id IS NOT NULL
           AND (n.status IS DISTINCT FROM o.status
                OR n.filled_quantity IS DISTINCT FROM o.filled_quantity)
         GROUP BY n.strategy_id, n.source_trader_id, n.symbol_id
    )
    UPDATE copy_slots s
       SET committed_quantity = s.committed_quantity + c.delta, updated_at = now()
      FROM changes c
     WHERE c.delta <> 0
       AND s.strategy_id = c.strategy_id AND s.trader_id = c.source_trader_id
       AND s.symbol_id = c.symbol_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER copy_slots_orders_update
    AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS copy_old_orders NEW TABLE AS copy_new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION copy_slots_orders_update();

CREATE OR REPLACE FUNCTION strategy_versions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'strategy version % is immutable', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'strategy_versions_immutable';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER strategy_versions_immutable
    BEFORE UPDATE ON strategy_versions
    FOR EACH ROW EXECUTE FUNCTION strategy_versions_immutable();
"""

REVERSE = """
DROP TRIGGER IF EXISTS strategy_versions_immutable ON strategy_versions;
DROP FUNCTION IF EXISTS strategy_versions_immutable();
DROP TRIGGER IF EXISTS copy_slots_orders_update ON orders;
DROP FUNCTION IF EXISTS copy_slots_orders_update();
DROP TRIGGER IF EXISTS copy_slots_orders_insert ON orders;
DROP FUNCTION IF EXISTS copy_slots_orders_insert();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("copytrade", "0003_traders_events_engine"),
        ("trading", "0002_order_state_guard"),
    ]
    operations = [migrations.RunSQL(SQL, REVERSE)]
