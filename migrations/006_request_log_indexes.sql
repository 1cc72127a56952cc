-- 006_request_log_indexes: indexes for the documented queries at scale.
--
-- Every documented report is per batch. Lookups by batch and by prompt use
-- request_log_attempt_key (batch_id, prompt_id, ...); results is keyed by
-- (batch_id, prompt_id) and indexed by (batch_id, tier). What they lacked:

-- "Wasted money" (README) and the failure columns of model_summary: a
-- batch's failed attempts per model and outcome, with their cost, from the
-- index alone; small, since most attempts are ok.
CREATE INDEX request_log_batch_failures_idx
    ON request_log (batch_id, model, outcome) INCLUDE (cost_usd)
    WHERE outcome <> 'ok';

-- Time: `cascadectl prune` finds old rows in the partition the cut-off
-- falls in (and in the default partition) by started_at. Rows arrive in
-- time order, so a BRIN index (a few pages per partition) does it.
CREATE INDEX request_log_started_at_brin
    ON request_log USING brin (started_at);
