-- 070 (issue 9): in-flight and waiting counts per batch, across workers.
--
-- Every worker process upserts one row per batch it holds prompts of, every
-- couple of seconds (internal/worker load.go): in_flight = prompts being
-- worked (in a model call or in the cascade), waiting = prompts it holds
-- that wait (for a model's capacity in its limiter, or delivered and not
-- started yet). A batch it holds none of any more loses its row at the
-- next flush, a clean exit deletes the worker's rows. A row counts while
-- expires_at (the database's clock, three flush intervals after the
-- write) has not passed, so a killed worker's rows stop counting on their
-- own; the next flush of any worker deletes rows expired for a minute.
-- `cascadectl status` sums the rows that count.
CREATE TABLE worker_batch_load (
    worker_id  text        NOT NULL,
    batch_id   text        NOT NULL,
    in_flight  integer     NOT NULL CHECK (in_flight >= 0),
    waiting    integer     NOT NULL CHECK (waiting >= 0),
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (worker_id, batch_id)
);
CREATE INDEX worker_batch_load_batch ON worker_batch_load (batch_id);
