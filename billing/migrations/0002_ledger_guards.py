"""The ledger's rules, enforced by PostgreSQL itself.

1. **Every journal transaction sums to zero, checked at commit.** ``billing_journal_balanced``
   is a ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger on journal transactions. At commit
   its first firing checks, in one set-based query, *every* journal transaction written by this
   database transaction (``created_txid = txid_current()``, indexed): entries sum to zero, at
   least two entries, every account in the transaction's currency, a fee/reversal has exactly
   one ``fees_ledger`` row whose amount is the transaction's debit side (sum of |amount| / 2) in
   the same currency, and a reversal's entries are exactly its target's, negated. It then notes
   ``tandem.billing_journal_checked = <txid>`` (transaction-local), so the other firings of the
   same commit return at once: a bulk accrual of 200,000 fees costs one check, not 200,000.
   Any later INSERT into the journal or the ledger clears the note (statement triggers), so
   rows written after an early ``SET CONSTRAINTS ... IMMEDIATE`` are checked again at commit.
2. **Entries and ledger rows join a journal transaction only in the database transaction that
   created it** (statement-level triggers with transition tables): what was balanced at commit
   stays balanced. ``created_txid`` cannot be forged (it must equal ``txid_current()``). The
   same statement trigger is the foreign key of ``billing_journal_entries.transaction_id`` and
   ``.account_id``: both parents are append-only (3.), so a parent that exists when the entry
   is written exists for good; checking that once per statement with a join costs a fraction of
   a row-level foreign-key trigger per entry.
3. **Immutable.** UPDATE and DELETE on ledger rows, journal transactions, entries and accounts
   are refused; a correction is a reversal. TRUNCATE is refused too, except on connections that
   set ``tandem.allow_truncate`` (the test settings do, to empty tables between tests).
4. **A reversal of a reversal is refused**, and a reversal must match its charge (user, type,
   category, amount, currency). Reversing twice is refused by the unique ``reversal_of``.
5. **Subscription periods of one user never overlap.** An exclusion constraint
   (``EXCLUDE USING gist (user_id WITH =, tstzrange(...) WITH &&)``) needs the ``btree_gist``
   extension, which the embedded PostgreSQL does not ship; this trigger is the equivalent: it
   serialises writers per user with a transaction-level advisory lock, then looks for an
   overlapping ``[start, end)`` range (PL/pgSQL statements take a fresh snapshot under READ
   COMMITTED, so a concurrent writer's committed row is seen). It raises SQLSTATE 23P01
   (exclusion_violation), as the exclusion constraint would.
"""

from django.db import migrations

SQL = r"""
-- 3. immutability --------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION billing_ledger_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('tandem.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused (correct a fee by reversing it)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER fees_ledger_immutable
    BEFORE UPDATE OR DELETE ON fees_ledger
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER fees_ledger_no_truncate
    BEFORE TRUNCATE ON fees_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_journal_transactions_immutable
    BEFORE UPDATE OR DELETE ON billing_journal_transactions
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_journal_transactions_no_truncate
    BEFORE TRUNCATE ON billing_journal_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_journal_entries_immutable
    BEFORE UPDATE OR DELETE ON billing_journal_entries
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_journal_entries_no_truncate
    BEFORE TRUNCATE ON billing_journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_accounts_immutable
    BEFORE UPDATE OR DELETE ON billing_accounts
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_immutable();
CREATE TRIGGER billing_accounts_no_truncate
    BEFORE TRUNCATE ON billing_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION billing_ledger_immutable();

-- 2. rows join a journal transaction only in the database transaction that created it ------
CREATE OR REPLACE FUNCTION billing_journal_transactions_inserted() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_new_jt WHERE created_txid <> txid_current()) THEN
        RAISE EXCEPTION 'billing_journal_transactions.created_txid must be txid_current()'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_jt_created_txid';
    END IF;
    PERFORM set_config('tandem.billing_journal_checked', '', true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_journal_transactions_inserted
    AFTER INSERT ON billing_journal_transactions
    REFERENCING NEW TABLE AS billing_new_jt
    FOR EACH STATEMENT EXECUTE FUNCTION billing_journal_transactions_inserted();

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
    PERFORM set_config('tandem.billing_journal_checked', '', true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_journal_entries_inserted
    AFTER INSERT ON billing_journal_entries
    REFERENCING NEW TABLE AS billing_new_je
    FOR EACH STATEMENT EXECUTE FUNCTION billing_journal_entries_inserted();

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
    PERFORM set_config('tandem.billing_journal_checked', '', true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER fees_ledger_inserted
    AFTER INSERT ON fees_ledger
    REFERENCING NEW TABLE AS billing_new_fees
    FOR EACH STATEMENT EXECUTE FUNCTION fees_ledger_inserted();

-- 1. balanced at commit ------------------------------------------------------------------
CREATE OR REPLACE FUNCTION billing_journal_balanced() RETURNS trigger AS $$
DECLARE
    marker text := txid_current()::text;
    bad record;
BEGIN
    IF current_setting('tandem.billing_journal_checked', true) = marker THEN
        RETURN NULL;
    END IF;

    WITH pending AS (
        SELECT id, kind, currency, reverses_id
          FROM billing_journal_transactions
         WHERE created_txid = txid_current()
    ), sums AS (
        SELECT e.transaction_id,
               SUM(e.amount) AS total,
               SUM(ABS(e.amount)) / 2 AS debit_side,
               COUNT(*) AS legs,
               BOOL_AND(a.currency = p.currency) AS same_currency
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
             OR f.kind <> CASE p.kind WHEN 'fee' THEN 'charge' ELSE 'reversal' END))
        OR (p.kind = 'payment' AND f.id IS NOT NULL)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % (%) does not balance: sum %, % legs, fee %, debits %',
            bad.id, bad.kind, bad.total, bad.legs, bad.fee_amount, bad.debit_side
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_journal_balanced';
    END IF;

    -- A reversal is its target's entries, negated, leg for leg (rare: checked one by one).
    SELECT p.id INTO bad
      FROM billing_journal_transactions p
     WHERE p.created_txid = txid_current() AND p.kind = 'reversal'
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

    PERFORM set_config('tandem.billing_journal_checked', marker, true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER billing_journal_balanced
    AFTER INSERT ON billing_journal_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing_journal_balanced();

-- 4. reversals -----------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION fees_ledger_reversal_check() RETURNS trigger AS $$
DECLARE
    target fees_ledger%ROWTYPE;
BEGIN
    SELECT * INTO target FROM fees_ledger WHERE id = NEW.reversal_of_id;
    IF target.kind <> 'charge' THEN
        RAISE EXCEPTION 'fee % is itself a reversal: a reversal cannot be reversed', target.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'fees_ledger_no_reversal_of_reversal';
    END IF;
    IF target.user_id <> NEW.user_id OR target.fee_type <> NEW.fee_type
       OR target.fee_category <> NEW.fee_category OR target.fee_amount <> NEW.fee_amount
       OR target.fee_currency <> NEW.fee_currency THEN
        RAISE EXCEPTION 'a reversal must match the fee it reverses (%)', target.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'fees_ledger_reversal_matches';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER fees_ledger_reversal_check
    BEFORE INSERT ON fees_ledger
    FOR EACH ROW WHEN (NEW.reversal_of_id IS NOT NULL)
    EXECUTE FUNCTION fees_ledger_reversal_check();

CREATE OR REPLACE FUNCTION billing_journal_reversal_check() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_journal_transactions
                WHERE id = NEW.reverses_id AND kind = 'reversal') THEN
        RAISE EXCEPTION 'journal transaction % is a reversal: it cannot be reversed',
            NEW.reverses_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'billing_jt_no_reversal_of_reversal';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_journal_reversal_check
    BEFORE INSERT ON billing_journal_transactions
    FOR EACH ROW WHEN (NEW.reverses_id IS NOT NULL)
    EXECUTE FUNCTION billing_journal_reversal_check();

-- 5. subscription periods never overlap ----------------------------------------------------
CREATE OR REPLACE FUNCTION billing_subscriptions_no_overlap() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('billing.subscriptions:' || NEW.user_id, 0));
    IF EXISTS (
        SELECT 1 FROM billing_subscriptions s
         WHERE s.user_id = NEW.user_id AND s.id <> NEW.id
           AND tstzrange(s.period_start, s.period_end, '[)')
               && tstzrange(NEW.period_start, NEW.period_end, '[)')
    ) THEN
        RAISE EXCEPTION 'subscription periods of user % overlap', NEW.user_id
            USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'billing_sub_no_overlap';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_subscriptions_no_overlap
    BEFORE INSERT OR UPDATE OF user_id, period_start, period_end ON billing_subscriptions
    FOR EACH ROW EXECUTE FUNCTION billing_subscriptions_no_overlap();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS billing_subscriptions_no_overlap ON billing_subscriptions;
DROP FUNCTION IF EXISTS billing_subscriptions_no_overlap();
DROP TRIGGER IF EXISTS billing_journal_reversal_check ON billing_journal_transactions;
DROP FUNCTION IF EXISTS billing_journal_reversal_check();
DROP TRIGGER IF EXISTS fees_ledger_reversal_check ON fees_ledger;
DROP FUNCTION IF EXISTS fees_ledger_reversal_check();
DROP TRIGGER IF EXISTS billing_journal_balanced ON billing_journal_transactions;
DROP FUNCTION IF EXISTS billing_journal_balanced();
DROP TRIGGER IF EXISTS fees_ledger_inserted ON fees_ledger;
DROP FUNCTION IF EXISTS fees_ledger_inserted();
DROP TRIGGER IF EXISTS billing_journal_entries_inserted ON billing_journal_entries;
DROP FUNCTION IF EXISTS billing_journal_entries_inserted();
DROP TRIGGER IF EXISTS billing_journal_transactions_inserted ON billing_journal_transactions;
DROP FUNCTION IF EXISTS billing_journal_transactions_inserted();
DROP TRIGGER IF EXISTS billing_accounts_no_truncate ON billing_accounts;
DROP TRIGGER IF EXISTS billing_accounts_immutable ON billing_accounts;
DROP TRIGGER IF EXISTS billing_journal_entries_no_truncate ON billing_journal_entries;
DROP TRIGGER IF EXISTS billing_journal_entries_immutable ON billing_journal_entries;
DROP TRIGGER IF EXISTS billing_journal_transactions_no_truncate ON billing_journal_transactions;
DROP TRIGGER IF EXISTS billing_journal_transactions_immutable ON billing_journal_transactions;
DROP TRIGGER IF EXISTS fees_ledger_no_truncate ON fees_ledger;
DROP TRIGGER IF EXISTS fees_ledger_immutable ON fees_ledger;
DROP FUNCTION IF EXISTS billing_ledger_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
