-- 046 (issue 9): priority between batches.
--
-- A batch's priority chooses its JetStream subject (prompts.<batch> for
-- normal, prompts.high.<batch> / prompts.low.<batch>) and so the consumer
-- that delivers it; workers fetch high first, then normal, then low.
-- `enqueue --priority` sets it; `cascadectl retry` republishes with it;
-- `cascadectl status` shows it.
ALTER TABLE batches
    ADD COLUMN priority text NOT NULL DEFAULT 'normal'
                             CHECK (priority IN ('high', 'normal', 'low'));
