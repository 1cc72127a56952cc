-- 005_partition_request_log: request_log becomes a table partitioned by
-- month of started_at (declarative RANGE partitioning), so that old attempts
-- are removed by dropping whole partitions instead of by deleting rows, and
-- queries bounded in time read only the months they cover.
--
-- The partition key is started_at, the moment the attempt began, as the
-- worker recorded it: a retried write of the same attempts carries the same
-- value, so the idempotency key (which on a partitioned table must contain
-- the partition key) is unchanged. started_at becomes NOT NULL (it defaults
-- to the insert time; rows without it take their created_at).
--
-- Months are created ahead of time by the workers and `cascadectl maintain`
-- (request_log_ensure_partitions below); a row outside every month lands in
-- request_log_default, never fails, and moves to its month when that month is
-- created.
--
-- Unique indexes added later on request_log must contain started_at.
--
-- Existing rows are copied into the new table inside this migration's
-- transaction (ids kept), which on a large request_log takes a while and
-- needs twice its disk space.

ALTER TABLE request_log RENAME TO request_log_unpartitioned;
ALTER INDEX request_log_attempt_key RENAME TO request_log_unpartitioned_attempt_key;
ALTER INDEX request_log_failures_idx RENAME TO request_log_unpartitioned_failures_idx;
ALTER TABLE request_log_unpartitioned RENAME CONSTRAINT request_log_pkey TO request_log_unpartitioned_pkey;

CREATE TABLE request_log (
    id            bigint           GENERATED ALWAYS AS IDENTITY,
    batch_id      text             NOT NULL,
    prompt_id     text             NOT NULL,
    attempt       integer          NOT NULL,
    delivery      integer          NOT NULL,
    tier          text             CHECK (tier IN ('simple', 'moderate', 'complex')),
    model         text             NOT NULL,
    outcome       text             NOT NULL CHECK (outcome <> ''),
    http_status   integer,
    error         text,
    input_tokens  integer          NOT NULL DEFAULT 0,
    output_tokens integer          NOT NULL DEFAULT 0,
    cost_usd      numeric(18, 10)  NOT NULL DEFAULT 0,
    latency_ms    double precision NOT NULL DEFAULT 0,
    estimated     boolean          NOT NULL DEFAULT false,
    started_at    timestamptz      NOT NULL DEFAULT now(),
    worker_id     text,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);

CREATE TABLE request_log_default PARTITION OF request_log DEFAULT;

-- Same keys and indexes as before, now on every partition.
CREATE UNIQUE INDEX request_log_attempt_key
    ON request_log (batch_id, prompt_id, delivery, attempt, started_at);
CREATE INDEX request_log_failures_idx
    ON request_log (model, outcome) WHERE outcome <> 'ok';

-- request_log_ensure_partitions creates the monthly partitions of request_log
-- that cover [from_ts, to_ts) (months in UTC) and do not exist yet, and
-- returns how many it created. Rows of a new month that were waiting in
-- request_log_default move into it. Callers that race each other serialise on
-- a SHARE UPDATE EXCLUSIVE lock of request_log (inserts go on meanwhile); a
-- call that finds every month present takes no lock at all. Partitions are created in request_log's schema and
-- named request_log_yYYYYmMM.
CREATE FUNCTION request_log_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    parent  regclass := 'request_log'::regclass;
    nsp     text;
    nspoid  oid;
    m       timestamp;
    lo      timestamptz;
    hi      timestamptz;
    part    text;
    created integer := 0;
    locked  boolean := false;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR to_ts < from_ts THEN
        RAISE EXCEPTION 'request_log_ensure_partitions: bad range [%, %)', from_ts, to_ts;
    END IF;
    IF to_ts - from_ts > interval '100 years' THEN
        RAISE EXCEPTION 'request_log_ensure_partitions: range [%, %) spans more than 100 years', from_ts, to_ts;
    END IF;
    SELECT n.nspname, n.oid INTO nsp, nspoid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    m := date_trunc('month', from_ts AT TIME ZONE 'UTC');
    WHILE (m AT TIME ZONE 'UTC') < to_ts LOOP
        lo := m AT TIME ZONE 'UTC';
        hi := (m + interval '1 month') AT TIME ZONE 'UTC';
        part := 'request_log_' || to_char(m, '"y"YYYY"m"MM');
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = part AND relnamespace = nspoid) THEN
            IF NOT locked THEN
                -- Self-conflicting, and does not block inserts.
                EXECUTE format('LOCK TABLE %I.request_log IN SHARE UPDATE EXCLUSIVE MODE', nsp);
                locked := true;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = part AND relnamespace = nspoid) THEN
                CREATE TEMP TABLE IF NOT EXISTS pc_partition_move (LIKE request_log) ON COMMIT DROP;
                TRUNCATE pc_partition_move;
                EXECUTE format('WITH moved AS (DELETE FROM %I.request_log_default WHERE started_at >= $1 AND started_at < $2 RETURNING *)
                                INSERT INTO pc_partition_move SELECT * FROM moved', nsp) USING lo, hi;
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.request_log FOR VALUES FROM (%L) TO (%L)',
                               nsp, part, nsp, lo, hi);
                EXECUTE format('INSERT INTO %I.request_log OVERRIDING SYSTEM VALUE SELECT * FROM pc_partition_move', nsp);
                created := created + 1;
            END IF;
        END IF;
        m := m + interval '1 month';
    END LOOP;
    RETURN created;
END
$fn$;

-- Months that hold existing rows of the last two years, this month and the
-- next two; older rows go to request_log_default.
SELECT request_log_ensure_partitions(
    greatest(now() - interval '2 years',
             least(now(), (SELECT min(coalesce(started_at, created_at)) FROM request_log_unpartitioned))),
    now() + interval '2 months');

INSERT INTO request_log (id, batch_id, prompt_id, attempt, delivery, tier, model, outcome, http_status,
    error, input_tokens, output_tokens, cost_usd, latency_ms, estimated, started_at, worker_id, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, batch_id, prompt_id, attempt, delivery, tier, model, outcome, http_status,
    error, input_tokens, output_tokens, cost_usd, latency_ms, estimated, coalesce(started_at, created_at),
    worker_id, created_at
FROM request_log_unpartitioned;

-- New ids continue after the copied ones.
SELECT setval(pg_get_serial_sequence('request_log', 'id'),
    greatest((SELECT max(id) FROM request_log_unpartitioned), 0) + 1, false);

DROP TABLE request_log_unpartitioned;
