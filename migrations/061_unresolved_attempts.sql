-- 061 (issue 8 item 6): prompts with request_log rows that may have no
-- results row, so that store.Write need not look for earlier attempts of
-- every prompt it stores.
--
-- results.cost_usd, attempts and usage_estimated cover every request_log row
-- of the prompt committed up to the transaction that inserts the results row.
-- Most prompts have none before it (a first delivery that finished), yet the
-- lookup that found out probed request_log_attempt_key in every partition of
-- request_log (it is partitioned by started_at, not by prompt): ~6 µs of
-- Postgres CPU per prompt with four partitions, more with each month kept.
--
-- A row here says "this prompt has attempts in request_log that a later
-- results row must count". It is inserted in the transaction that logs
-- attempts without storing the prompt's results row (a transient delivery:
-- handed back, parked, handed off to a provider batch), unless the prompt
-- has a results row already, and by `cascadectl retry` for the rows it
-- takes out of results. The transaction that inserts the results row deletes
-- it and sums request_log for that prompt only. A row left behind by a race
-- (a transient delivery committing beside the results row's transaction)
-- costs one lookup if the prompt is ever stored again, nothing else.
--
-- Workers of an earlier version do not write these rows: stop them before
-- this migration runs (the existing prompts are recorded below).
CREATE TABLE unresolved_attempts (
    batch_id  text NOT NULL,
    prompt_id text NOT NULL,
    PRIMARY KEY (batch_id, prompt_id)
);

INSERT INTO unresolved_attempts (batch_id, prompt_id)
SELECT DISTINCT l.batch_id, l.prompt_id FROM request_log l
WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id);
