-- 020_labels: per-prompt correctness labels, the ground truth a learned
-- router trains on and misrouting reports compare against.
--
-- A row says whether one model answered one prompt well enough. Rows come
-- from `cascadectl labels import` (RouteLLM evaluation CSVs, labels JSONL:
-- source 'import', dataset = the file's name or --dataset) and from shadow
-- judging in the worker (source 'shadow', dataset = the batch, with the
-- batch_id/prompt_id of the results row judged, the stronger model whose
-- answer was the reference, and the judge).
--
-- prompt_sha256 is sha256 of the prompt text, as results.prompt_sha256, so
-- labels join results across batches without storing ids twice:
--   SELECT r.tier, l.model, l.correct
--   FROM results r JOIN labels l ON l.prompt_sha256 = r.prompt_sha256;
CREATE TABLE labels (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL CHECK (source IN ('import', 'shadow')),
    dataset       text        NOT NULL CHECK (dataset <> ''),
    item_id       text        NOT NULL CHECK (item_id <> ''),
    batch_id      text,
    prompt_id     text,
    prompt        text,       -- NULL for shadow labels under STORE_PROMPTS=false
    prompt_sha256 bytea       NOT NULL,
    model         text        NOT NULL CHECK (model <> ''),
    correct       boolean     NOT NULL,
    reference     text,       -- shadow: the stronger model the answer was compared with
    judge         text,       -- shadow: the model that gave the verdict
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT labels_item_model_key UNIQUE (dataset, item_id, model)
);

CREATE INDEX labels_prompt_sha256_idx ON labels (prompt_sha256);
CREATE INDEX labels_batch_prompt_idx ON labels (batch_id, prompt_id) WHERE batch_id IS NOT NULL;

-- The learned router's score of the prompt (0 = the cheap tier will do,
-- 1 = needs the strongest); NULL when the heuristic classified it.
ALTER TABLE results ADD COLUMN router_score double precision;
