-- 040 (issue 9): what export and retry need from each prompt.
--
-- seq is the prompt's position in the input of the enqueue run that
-- published it (1-based, across its files in the order given), so exports
-- list rows in input order. max_tokens is the request's own limit (NULL when
-- it set none), kept so that a retry republishes the same request.
ALTER TABLE results
    ADD COLUMN seq        bigint,
    ADD COLUMN max_tokens integer CHECK (max_tokens > 0);

CREATE INDEX results_batch_seq_idx ON results (batch_id, seq, prompt_id);
