-- 043 (issue 9): routes per batch, retry, and what workers say about a batch.

-- Routes files, content-addressed: a batch names the sha256 of its file's
-- bytes. Rows are never changed; a new file is a new row.
CREATE TABLE routes (
    sha256     bytea       PRIMARY KEY CHECK (length(sha256) = 32),
    yaml       text        NOT NULL,
    source     text        NOT NULL, -- the file name it was read from
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Which routes a batch ran with, one version per change (enqueue --routes,
-- retry --routes); batches.routes_sha256 is the current one (NULL: each
-- worker's ROUTES_FILE).
CREATE TABLE batch_routes (
    batch_id      text        NOT NULL,
    version       integer     NOT NULL,
    routes_sha256 bytea       NOT NULL REFERENCES routes (sha256),
    set_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, version)
);
ALTER TABLE batches ADD COLUMN routes_sha256 bytea REFERENCES routes (sha256);

-- Results replaced by `cascadectl retry`: the whole earlier row, as JSON
-- (so that columns added to results later need no change here), with the
-- generation it belonged to (1 = the first answer).
CREATE TABLE result_history (
    batch_id      text        NOT NULL,
    prompt_id     text        NOT NULL,
    generation    integer     NOT NULL,
    result        jsonb       NOT NULL,
    superseded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, prompt_id, generation)
);

-- One line per batch and worker when a worker cannot work a batch (its
-- routes need a provider key the worker lacks): `cascadectl status` shows it.
CREATE TABLE batch_notes (
    batch_id  text        NOT NULL,
    worker_id text        NOT NULL,
    note      text        NOT NULL,
    noted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, worker_id)
);
