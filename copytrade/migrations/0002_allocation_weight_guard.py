"""The seed's trigger: a strategy's allocation weights never sum above 1.

The seed's version only sums; two concurrent transactions could each pass it and together exceed
1. This one first locks the strategy row (the same lock the service takes), so the sum it reads
includes every committed change and concurrent writers queue behind each other.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION validate_allocation_weights() RETURNS trigger AS $$
DECLARE
    total numeric;
BEGIN
    PERFORM 1 FROM copy_strategies WHERE id = NEW.strategy_id FOR UPDATE;
    SELECT COALESCE(SUM(weight), 0) INTO total
      FROM copy_allocations WHERE strategy_id = NEW.strategy_id;
    IF total > 1.0 THEN
        RAISE EXCEPTION 'Total allocation weight cannot exceed 1.0 (would be %)', total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'chk_allocation_weight_sum';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_validate_allocation_weights
    AFTER INSERT OR UPDATE ON copy_allocations
    FOR EACH ROW EXECUTE FUNCTION validate_allocation_weights();
"""

REVERSE = """
DROP TRIGGER IF EXISTS trigger_validate_allocation_weights ON copy_allocations;
DROP FUNCTION IF EXISTS validate_allocation_weights();
"""


class Migration(migrations.Migration):
    dependencies = [("copytrade", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
