-- 075_provider_batch_cancel: cancelling a batch cancels its provider batches.
--
-- When every item still waiting in a submitted provider batch belongs to a
-- canceled batch (cascadectl cancel), the provider is asked to cancel it,
-- by cascadectl cancel or by the model's poller, whichever comes first;
-- cancel_requested_at records the call once the provider answered it (a
-- call that failed in a way worth retrying is made again), and cancel_error
-- keeps the provider's reason when it refused. cascadectl batches cancel ID
-- sets it too.
ALTER TABLE provider_batches ADD COLUMN cancel_requested_at timestamptz, ADD COLUMN cancel_error text;
