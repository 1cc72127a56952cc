-- 044_response_cache: answers kept for the response cache (a routes file's
-- `cache: {ttl: ...}`), keyed by the SHA-256 of model, system prompt,
-- prompt text and the parameters sent to the provider (max_tokens). Rows
-- are written by store.Write in the transaction of the results row whose
-- answer came from a call; stored_at says how old the answer is (the ttl
-- is applied when looking up). The prompt text is not kept here.
CREATE TABLE response_cache (
    key           bytea PRIMARY KEY,
    model         text        NOT NULL,
    response      text        NOT NULL,
    finish_reason text,
    input_tokens  integer     NOT NULL DEFAULT 0,
    output_tokens integer     NOT NULL DEFAULT 0,
    stored_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX response_cache_stored_at ON response_cache (stored_at);
