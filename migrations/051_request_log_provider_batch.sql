-- 051_request_log_provider_batch: the provider batch an attempt ran in.
--
-- Set on the attempts made through a provider batch API (their cost_usd is
-- at the batch price); NULL for synchronous calls.
ALTER TABLE request_log ADD COLUMN provider_batch_id text;
