-- 041 (issue 9): cancel, pause and resume a batch.
--
-- batches.state is what workers check before every model call (they cache
-- it for at most a second): 'running' is worked, 'paused' is set aside
-- without spending, 'canceled' is dropped. state_reason says why (shown by
-- `cascadectl status`), e.g. the budget that paused it.
ALTER TABLE batches
    ADD COLUMN state            text        NOT NULL DEFAULT 'running'
                                            CHECK (state IN ('running', 'paused', 'canceled')),
    ADD COLUMN state_reason     text,
    ADD COLUMN state_changed_at timestamptz;

-- Workers read the batches that are not running, often: keep that small.
CREATE INDEX batches_not_running_idx ON batches (batch_id) WHERE state <> 'running';

-- When `cascadectl cancel` marked a prompt that had no result yet.
ALTER TABLE batch_prompts ADD COLUMN canceled_at timestamptz;

-- Messages of paused batches, taken off the queue by the workers (no model
-- is called) and republished by `cascadectl resume`: a paused batch holds
-- no broker or worker resources, however large. payload is the message
-- body as the worker received it (the prompt's text included).
CREATE TABLE batch_parked (
    batch_id  text        NOT NULL,
    prompt_id text        NOT NULL,
    seq       bigint,
    payload   bytea       NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, prompt_id)
);
