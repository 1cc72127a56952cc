-- 050_provider_batches: prompts that wait at a provider's batch API.
--
-- A worker whose cascade reaches a batch-mode model records the prompt here
-- (an item in state 'queued', in the same transaction as the attempts made
-- so far) and acks its message: from then on Postgres owns the prompt. The
-- model's submitter (one per model across all workers, under an advisory
-- lock) gathers queued items into a provider batch, the poller ingests the
-- results, and each item ends 'done' (its results row, or its next item for
-- another batch-mode model, committed in the same transaction) or
-- 'handing_off' → 'handed_off' (republished to the stream for a synchronous
-- model).

-- One row per provider batch, written BEFORE the provider is asked to create
-- it (state 'submitting': the intent). provider_batch_id is stored once the
-- provider accepted it; a submitter that finds an intent without an id asks
-- the provider's list endpoint for a batch with its label before creating
-- one, so that a crash between create and record never submits the same
-- items twice.
CREATE TABLE provider_batches (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model             text        NOT NULL,               -- "provider/model" as in the routes
    label             text        NOT NULL UNIQUE,        -- sent as metadata / displayName; custom ids start with it
    state             text        NOT NULL CHECK (state IN ('submitting', 'submitted', 'done', 'failed', 'canceled')),
    provider_batch_id text        UNIQUE,
    provider_status   text,
    items             integer     NOT NULL CHECK (items > 0),
    bytes             bigint      NOT NULL DEFAULT 0,
    submit_attempts   integer     NOT NULL DEFAULT 0,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    polled_at         timestamptz,
    ended_at          timestamptz,
    done_at           timestamptz
);

CREATE INDEX provider_batches_open_idx ON provider_batches (model, id) WHERE state IN ('submitting', 'submitted');

-- One row per prompt and batch-mode model. job holds the prompt (and is
-- cleared once the item is settled); attempts_before and delivery continue
-- the request_log numbering of the rounds before.
CREATE TABLE provider_batch_items (
    batch_id        text        NOT NULL,
    prompt_id       text        NOT NULL,
    model           text        NOT NULL,
    position        integer     NOT NULL CHECK (position >= 0),  -- index of model in the tier's list
    tier            text        NOT NULL CHECK (tier IN ('simple', 'moderate', 'complex')),
    job             jsonb,
    signals         jsonb       NOT NULL DEFAULT '{}',
    delivery        integer     NOT NULL DEFAULT 1,
    attempts_before integer     NOT NULL DEFAULT 0,
    bytes           integer     NOT NULL DEFAULT 0,
    state           text        NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'submitted', 'done', 'handing_off', 'handed_off')),
    provider_batch  bigint      REFERENCES provider_batches (id),
    custom_id       text,
    rounds          integer     NOT NULL DEFAULT 0,  -- provider batches this item was in
    outcome         text,                             -- how its last round ended (request_log.outcome)
    queued_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, prompt_id, model)
);

CREATE INDEX provider_batch_items_queued_idx ON provider_batch_items (model, queued_at) WHERE state = 'queued';
CREATE INDEX provider_batch_items_batch_idx ON provider_batch_items (provider_batch, custom_id) WHERE provider_batch IS NOT NULL;
CREATE INDEX provider_batch_items_open_idx ON provider_batch_items (batch_id) WHERE state IN ('queued', 'submitted', 'handing_off');
