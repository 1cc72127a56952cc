-- 042 (issue 9): a spending cap per batch.
--
-- budget_usd is the cap (NULL: none). spent_usd is every call of the batch
-- that is in request_log, kept equal to sum(request_log.cost_usd) by
-- store.Write in the transaction that inserts the rows, so a worker checks
-- a budget with one row instead of summing the log.
ALTER TABLE batches
    ADD COLUMN budget_usd numeric(18, 10) CHECK (budget_usd >= 0),
    ADD COLUMN spent_usd  numeric(18, 10) NOT NULL DEFAULT 0;

UPDATE batches b SET spent_usd = l.spent
FROM (SELECT batch_id, sum(cost_usd) AS spent FROM request_log GROUP BY batch_id) l
WHERE l.batch_id = b.batch_id;

-- What a worker set aside before a model call of a batch with a budget:
-- the call's estimated cost, held until the commit that logs the call (it
-- deletes the hold and adds the real cost to spent_usd). A hold older than
-- the longest call (a worker died meanwhile) no longer counts.
CREATE TABLE budget_holds (
    id         bigint          GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id   text            NOT NULL,
    prompt_id  text            NOT NULL,
    worker_id  text,
    amount_usd numeric(18, 10) NOT NULL CHECK (amount_usd >= 0),
    created_at timestamptz     NOT NULL DEFAULT now()
);
CREATE INDEX budget_holds_batch_idx ON budget_holds (batch_id, created_at);
