-- 062 (issue 8): results loses two indexes that no query needs, so that a
-- worker's commit maintains two btrees per prompt instead of four.
--
-- results_batch_tier_idx (batch_id, tier): every per-batch query (the
-- report views, status, verify, export, retry) finds a batch's rows through
-- the primary key's batch_id prefix and reads tier from the row; the
-- per-tier views group a batch's rows by tier without a tier condition.
-- results_model_used_idx (model_used): no query looks results up by model
-- without its batch (retry's model filter and the views' comparisons apply
-- to a batch's rows), and a handful of models shares millions of rows, so
-- an index on it alone selects little.
--
-- Together they cost Postgres a quarter of a results row's insert
-- (callgrind of a COPY of 10,000 worker-shaped rows into a table of 51,200:
-- 74.8k instructions per row with all four indexes, 55.4k without these
-- two; a request_log row costs 51.8k). TestViewsUseIndexes still finds
-- every view reading one batch through an index.
DROP INDEX IF EXISTS results_batch_tier_idx;
DROP INDEX IF EXISTS results_model_used_idx;
