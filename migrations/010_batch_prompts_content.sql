-- 010 (issue 7): what each enqueued id stood for.
--
-- content_sha256 is a SHA-256 of what the prompt asks (prompt, system,
-- max_tokens, metadata; queue.ContentHash). enqueue records it with the id
-- and refuses a line whose id is already in the batch with another hash: two
-- files that share a name (and so a batch and line-number ids) no longer
-- merge silently. NULL (ids recorded before this migration, or by a dead
-- letter replay) matches any content.
ALTER TABLE batch_prompts ADD COLUMN content_sha256 bytea
    CHECK (content_sha256 IS NULL OR length(content_sha256) = 32);
