"""One balance check per database transaction, and set-based attribution keys.

Migration 0002 checked the journal at commit with a deferred *row* constraint trigger on
journal transactions: 200,000 fees queued 200,000 trigger events, each a PL/pgSQL call that
returned at once after the first had checked everything. And the entries' ``strategy_id`` /
``allocation_id`` foreign keys queued two row-level checks per customer-side entry. Together they
were about a third of a 100,000-fill accrual. Now:

1. **The check runs once per database transaction.** Every INSERT statement into journal
   transactions, entries or ``fees_ledger`` notes its transaction in ``billing_journal_pending``
   (statement triggers, ``ON CONFLICT DO NOTHING``: one row per transaction). That row carries
   the ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger ``billing_journal_balanced``: at commit
   it runs the same set-based check as before over every journal transaction written by this
   database transaction, plus "a customer entry's strategy is its fee's strategy", and deletes
   the note. A write after an early ``SET CONSTRAINTS ... IMMEDIATE`` notes the transaction again,
   so it is checked again at commit. Nothing is checked less than before.
2. **Attribution keys are checked per statement.** The entries' insert trigger (0002) now also
   refuses an unknown strategy or allocation, or an allocation of another strategy; deleting a
   strategy or allocation that entries name is refused by statement triggers on those tables
   (what the foreign keys did: PROTECT, and NO ACTION in the database).
"""

import importlib

from django.db import migrations, models

GUARDS_0002 = importlib.import_module("billing.migrations.0002_ledger_guards")

SQL = r"""
DROP TRIGGER billing_journal_balanced ON billing_journal_transactions;

CREATE TABLE billing_journal_pending (txid bigint PRIMARY KEY);

CREATE OR REPLACE FUNCTION billing_journal_note() RETURNS void AS $$
    INSERT INTO billing_journal_pending (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
$$ LANGUAGE sql;

CREATE OR REPLACE FUNCTION billing_journal_transactions_inserted() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_new_jt WHERE created_txid <> txid_current()) THEN
        RAISE EXCEPTION 'billing_journal_transactions.created_txid must be txid_current()'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_jt_created_txid';
    END IF;
    PERFORM billing_journal_note();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_journal_entries_inserted() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM billing_new_je n
          LEFT JOIN billing_journal_transactions t ON t.id = n.transaction_id
         WHERE t.id IS NULL OR t.created_txid <> txid_current()
    ) THEN
        RAISE EXCEPTION 'entries may only be added to a journal transaction in the database '
                        'transaction that created it (and written after it)'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'billing_je_same_transaction';
    END IF;
    IF EXISTS (
        SELECT 1 FROM billing_new_je n
          LEFT JOIN billing_accounts a ON a.id = n.account_id
         WHERE a.id IS NULL
    ) THEN
        RAISE EXCEPTION 'an entry names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'billing_je_account_exists';
    END IF;
    IF EXISTS (
        SELECT 1 FROM billing_new_je n
         WHERE n.strategy_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM copy_strategies s WHERE s.id = n.strategy_id)
    ) THEN
        RAISE EXCEPTION 'an entry names a strategy that does not exist'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'billing_je_strategy_exists';
    END IF;
    IF EXISTS (
        SELECT 1 FROM billing_new_je n
         WHERE n.allocation_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM copy_allocations a
                            WHERE a.id = n.allocation_id AND a.strategy_id = n.strategy_id)
    ) THEN
        RAISE EXCEPTION 'an entry names an allocation that does not exist or is not of its strategy'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'billing_je_allocation_exists';
    END IF;
    PERFORM billing_journal_note();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION fees_ledger_inserted() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM billing_new_fees n
          JOIN billing_journal_transactions t ON t.id = n.journal_transaction_id
         WHERE t.created_txid <> txid_current()
    ) THEN
        RAISE EXCEPTION 'a fee row is written with its journal transaction'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'fees_ledger_same_transaction';
    END IF;
    PERFORM billing_journal_note();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_journal_balanced() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    WITH pending AS (
        SELECT id, kind, currency, reverses_id
          FROM billing_journal_transactions
         WHERE created_txid = NEW.txid
    ), sums AS (
        SELECT e.transaction_id,
               SUM(e.amount) AS total,
               SUM(ABS(e.amount)) / 2 AS debit_side,
               COUNT(*) AS legs,
               BOOL_AND(a.currency = p.currency) AS same_currency,
               -- Customer-side attribution names the fee's strategy (which the fee row's
               -- foreign key protects), never another one.
               BOOL_AND(e.strategy_id IS NULL) AS unattributed,
               MIN(e.strategy_id::text) AS first_strategy,
               MAX(e.strategy_id::text) AS last_strategy
          FROM pending p
          JOIN billing_journal_entries e ON e.transaction_id = p.id
          JOIN billing_accounts a ON a.id = e.account_id
         GROUP BY e.transaction_id
    )
    SELECT p.id, p.kind, s.total, s.legs, f.fee_amount, s.debit_side
      INTO bad
      FROM pending p
      LEFT JOIN sums s ON s.transaction_id = p.id
      LEFT JOIN fees_ledger f ON f.journal_transaction_id = p.id
     WHERE s.transaction_id IS NULL
        OR s.total <> 0
        OR s.legs < 2
        OR NOT s.same_currency
        OR (p.kind IN ('fee', 'reversal') AND (
                f.id IS NULL
             OR f.fee_amount <> s.debit_side
             OR f.fee_currency <> p.currency
             OR f.kind <> CASE p.kind WHEN 'fee' THEN 'charge' ELSE 'reversal' END
             OR (NOT s.unattributed AND (
                    f.strategy_id IS NULL
                 OR s.first_strategy <> f.strategy_id::text
                 OR s.last_strategy <> f.strategy_id::text))))
        OR (p.kind = 'payment' AND (f.id IS NOT NULL OR NOT s.unattributed))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % (%) does not balance: sum %, % legs, fee %, debits %',
            bad.id, bad.kind, bad.total, bad.legs, bad.fee_amount, bad.debit_side
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_journal_balanced';
    END IF;

    -- A reversal is its target's entries, negated, leg for leg (rare: checked one by one).
    SELECT p.id INTO bad
      FROM billing_journal_transactions p
     WHERE p.created_txid = NEW.txid AND p.kind = 'reversal'
       AND (EXISTS (
                SELECT account_id, -amount, strategy_id, allocation_id
                  FROM billing_journal_entries WHERE transaction_id = p.reverses_id
                EXCEPT ALL
                SELECT account_id, amount, strategy_id, allocation_id
                  FROM billing_journal_entries WHERE transaction_id = p.id)
         OR EXISTS (
                SELECT account_id, amount, strategy_id, allocation_id
                  FROM billing_journal_entries WHERE transaction_id = p.id
                EXCEPT ALL
                SELECT account_id, -amount, strategy_id, allocation_id
                  FROM billing_journal_entries WHERE transaction_id = p.reverses_id))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'reversal % does not negate its target entry for entry', bad.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_journal_reversal_exact';
    END IF;

    -- Checked: a later write in this transaction notes it again (and is checked at commit).
    DELETE FROM billing_journal_pending WHERE txid = NEW.txid;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER billing_journal_balanced
    AFTER INSERT ON billing_journal_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing_journal_balanced();

-- 2. deleting what entries are attributed to is refused (the foreign keys' NO ACTION) -------
CREATE OR REPLACE FUNCTION billing_attribution_protect() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'copy_strategies' AND EXISTS (
        SELECT 1 FROM billing_old o JOIN billing_journal_entries e ON e.strategy_id = o.id
    ) OR TG_TABLE_NAME = 'copy_allocations' AND EXISTS (
        SELECT 1 FROM billing_old o JOIN billing_journal_entries e ON e.allocation_id = o.id
    ) THEN
        RAISE EXCEPTION '% rows that fees are attributed to cannot be deleted', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'billing_je_attribution_kept';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_attribution_protect
    AFTER DELETE ON copy_strategies
    REFERENCING OLD TABLE AS billing_old
    FOR EACH STATEMENT EXECUTE FUNCTION billing_attribution_protect();
CREATE TRIGGER billing_attribution_protect
    AFTER DELETE ON copy_allocations
    REFERENCING OLD TABLE AS billing_old
    FOR EACH STATEMENT EXECUTE FUNCTION billing_attribution_protect();
"""

# Back to 0002's objects: drop this migration's, then 0002's, then create 0002's again.
REVERSE = (
    r"""
DROP TRIGGER IF EXISTS billing_attribution_protect ON copy_allocations;
DROP TRIGGER IF EXISTS billing_attribution_protect ON copy_strategies;
DROP FUNCTION IF EXISTS billing_attribution_protect();
DROP TRIGGER IF EXISTS billing_journal_balanced ON billing_journal_pending;
DROP TABLE IF EXISTS billing_journal_pending;
"""
    + GUARDS_0002.REVERSE
    + "DROP FUNCTION IF EXISTS billing_journal_note();\n"
    + GUARDS_0002.SQL
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_default_plans"),
        ("copytrade", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="journalentry",
            name="allocation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to="copytrade.copyallocation",
            ),
        ),
        migrations.AlterField(
            model_name="journalentry",
            name="strategy",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to="copytrade.copystrategy",
            ),
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
