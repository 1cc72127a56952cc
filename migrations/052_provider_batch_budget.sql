-- 052_provider_batch_budget: budgets cover prompts sent to provider batches.
--
-- Before a prompt of a batch with a budget goes into a provider batch, the
-- submitter reserves its estimated cost (at the batch price) in
-- budget_holds and records the hold here; the transaction that logs the
-- prompt's batch attempt releases it. While the provider batch runs (hours),
-- the poller keeps its holds from expiring.
ALTER TABLE provider_batch_items ADD COLUMN budget_hold bigint;
