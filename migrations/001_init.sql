-- 001_init: the initial promptcascade schema.
--
-- Objects are created unqualified: they land in the first schema of the
-- connection's search_path (public by default, one schema per test in tests).
--
-- Money is numeric(18, 10), not double precision: sums over millions of rows
-- are exact and the same whatever the aggregation order (parallel plans sum
-- floats in varying order), so cost reports reconcile to the last digit.
-- Ten decimals keep sub-nanodollar resolution for the cheapest calls; the
-- worker stages float64 costs and the insert casts them once.

-- One row per named batch. total is the number of prompts the batch is meant
-- to hold; enqueued counts distinct ids recorded in batch_prompts.
CREATE TABLE batches (
    batch_id   text        PRIMARY KEY CHECK (batch_id <> ''),
    total      bigint      NOT NULL DEFAULT 0 CHECK (total >= 0),
    enqueued   bigint      NOT NULL DEFAULT 0 CHECK (enqueued >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What enqueue published, one row per prompt id: the reference that
-- `cascadectl verify` reconciles results against.
CREATE TABLE batch_prompts (
    batch_id    text        NOT NULL REFERENCES batches (batch_id) ON DELETE CASCADE,
    prompt_id   text        NOT NULL CHECK (prompt_id <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, prompt_id)
);

-- One row per prompt, written once by the delivery that finished it.
-- cost_usd and attempts cover every request_log row of the prompt that was
-- committed up to and including the transaction that inserted this row
-- (earlier transient deliveries included; later, losing deliveries not).
CREATE TABLE results (
    batch_id        text             NOT NULL CHECK (batch_id <> ''),
    prompt_id       text             NOT NULL CHECK (prompt_id <> ''),
    prompt          text,            -- NULL when STORE_PROMPTS=false
    system          text,            -- NULL when STORE_PROMPTS=false or no system prompt
    metadata        jsonb,
    tier            text             NOT NULL CHECK (tier IN ('simple', 'moderate', 'complex')),
    word_count      integer          NOT NULL DEFAULT 0,
    token_count     integer          NOT NULL DEFAULT 0,
    complex_hits    integer          NOT NULL DEFAULT 0,
    moderate_hits   integer          NOT NULL DEFAULT 0,
    status          text             NOT NULL CHECK (status IN ('succeeded', 'failed')),
    model_used      text,
    attempts        integer          NOT NULL DEFAULT 0,
    response        text,            -- NULL when STORE_PROMPTS=false or failed
    finish_reason   text,
    input_tokens    integer          NOT NULL DEFAULT 0,
    output_tokens   integer          NOT NULL DEFAULT 0,
    cost_usd        numeric(18, 10)  NOT NULL DEFAULT 0,
    latency_ms      double precision NOT NULL DEFAULT 0,
    error           text,
    enqueued_at     timestamptz,
    completed_at    timestamptz      NOT NULL DEFAULT now(),
    worker_id       text,
    prompt_sha256   bytea            NOT NULL,
    prompt_chars    integer          NOT NULL DEFAULT 0,
    response_chars  integer          NOT NULL DEFAULT 0,
    usage_estimated boolean          NOT NULL DEFAULT false,
    delivery        integer          NOT NULL DEFAULT 1,
    PRIMARY KEY (batch_id, prompt_id)
);

-- Per-tier reports of one batch; model analysis across batches.
CREATE INDEX results_batch_tier_idx ON results (batch_id, tier);
CREATE INDEX results_model_used_idx ON results (model_used);

-- One row per model call (or deliberate skip), from every delivery, including
-- transient deliveries that were nak'd and deliveries that lost the race to
-- another worker: this is the money actually spent.
CREATE TABLE request_log (
    id            bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id      text             NOT NULL,
    prompt_id     text             NOT NULL,
    attempt       integer          NOT NULL,
    delivery      integer          NOT NULL,
    tier          text             CHECK (tier IN ('simple', 'moderate', 'complex')),
    model         text             NOT NULL,
    outcome       text             NOT NULL CHECK (outcome <> ''),
    http_status   integer,         -- NULL when no HTTP exchange took place
    error         text,
    input_tokens  integer          NOT NULL DEFAULT 0,
    output_tokens integer          NOT NULL DEFAULT 0,
    cost_usd      numeric(18, 10)  NOT NULL DEFAULT 0,
    latency_ms    double precision NOT NULL DEFAULT 0,
    estimated     boolean          NOT NULL DEFAULT false,
    started_at    timestamptz,
    worker_id     text,
    created_at    timestamptz      NOT NULL DEFAULT now()
);

-- Serves lookups by prompt (and by batch, as a prefix) and makes a retried
-- write of the same delivery idempotent: an attempt is identified by its
-- prompt, delivery, number and start time.
CREATE UNIQUE INDEX request_log_attempt_key
    ON request_log (batch_id, prompt_id, delivery, attempt, started_at);
-- Which models fail and how: small, since most attempts are ok.
CREATE INDEX request_log_failures_idx
    ON request_log (model, outcome) WHERE outcome <> 'ok';

-- Messages that could not be decoded, kept raw. The same message delivered
-- again (same stream sequence, subject and bytes) does not add a row.
CREATE TABLE dead_letters (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_seq     bigint      NOT NULL,
    subject        text        NOT NULL,
    payload        bytea       NOT NULL,
    payload_sha256 bytea       NOT NULL GENERATED ALWAYS AS (sha256(payload)) STORED,
    error          text        NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    CONSTRAINT dead_letters_message_key UNIQUE (stream_seq, subject, payload_sha256)
);
