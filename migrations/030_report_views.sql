-- 030_report_views: prices in Postgres and the views behind `cascadectl report`.
--
-- Every view is plain SQL over results and request_log, grouped by batch_id
-- first, so that `WHERE batch_id = '...'` is pushed down into each grouping
-- and a one-batch query reads only that batch's rows through the
-- (batch_id, prompt_id, ...) indexes (results' primary key and
-- request_log_attempt_key): no sequential scan of request_log, partitioned
-- or not. Money stays numeric; rates are fractions (0..1), not percents.

-- The price of every model of the routes a worker applied to a batch, as it
-- applied them (routes file and PRICING_FILE included): written once per
-- batch and worker process, with the batch's first results. The first
-- worker's prices win; a worker with other prices for the same model leaves
-- the row as it is (request_log.cost_usd is what each call really cost).
CREATE TABLE model_prices (
    batch_id                 text            NOT NULL CHECK (batch_id <> ''),
    model                    text            NOT NULL CHECK (model <> ''),
    input_usd_per_mtok       numeric(18, 10) NOT NULL CHECK (input_usd_per_mtok >= 0),
    output_usd_per_mtok      numeric(18, 10) NOT NULL CHECK (output_usd_per_mtok >= 0),
    cache_read_usd_per_mtok  numeric(18, 10) NOT NULL DEFAULT 0,
    cache_write_usd_per_mtok numeric(18, 10) NOT NULL DEFAULT 0,
    context_window           integer         NOT NULL DEFAULT 0,
    tiers                    text[]          NOT NULL DEFAULT '{}', -- tiers whose cascade lists the model
    worker_id                text,
    recorded_at              timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, model)
);

-- Per prompt, what its attempts were (every delivery): the first model tried
-- (the tier's first model, even when it was skipped for a cooldown), how the
-- first attempt ended, the number of attempts, quality failures and spend.
-- One pass over the prompt's request_log rows in index order.
CREATE VIEW prompt_attempts AS
SELECT batch_id, prompt_id,
       (array_agg(model ORDER BY delivery, attempt, started_at))[1]   AS first_model,
       (array_agg(outcome ORDER BY delivery, attempt, started_at))[1] AS first_outcome,
       count(*)                                                       AS attempts,
       count(*) FILTER (WHERE outcome IN ('quality_failed', 'empty_response')) AS quality_fails,
       sum(cost_usd)                                                  AS spent_usd
FROM request_log
GROUP BY batch_id, prompt_id;

-- Per batch and tier: traffic, share of the batch, cost, latency of answered
-- prompts, cascade rate (answered by a model other than the tier's first),
-- quality-fail rate (prompts with at least one failed quality check) and
-- failures.
CREATE VIEW tier_summary AS
SELECT batch_id, tier, prompts,
       prompts::numeric / sum(prompts) OVER (PARTITION BY batch_id) AS share,
       succeeded, failed, cost_usd,
       cost_usd / prompts                                         AS cost_per_prompt_usd,
       p50_ms, p95_ms, p99_ms,
       cascaded,
       cascaded::numeric / prompts                                AS cascade_rate,
       quality_failed,
       quality_failed::numeric / prompts                          AS quality_fail_rate
FROM (
    SELECT r.batch_id, r.tier,
           count(*)                                         AS prompts,
           count(*) FILTER (WHERE r.status = 'succeeded')   AS succeeded,
           count(*) FILTER (WHERE r.status = 'failed')      AS failed,
           sum(r.cost_usd)                                  AS cost_usd,
           percentile_cont(0.50) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'succeeded') AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'succeeded') AS p95_ms,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'succeeded') AS p99_ms,
           count(*) FILTER (WHERE r.status = 'succeeded' AND r.model_used IS DISTINCT FROM a.first_model) AS cascaded,
           count(*) FILTER (WHERE a.quality_fails > 0)      AS quality_failed
    FROM results r
    LEFT JOIN prompt_attempts a ON a.batch_id = r.batch_id AND a.prompt_id = r.prompt_id
    GROUP BY r.batch_id, r.tier
) t;

-- Per batch and model: attempts by outcome, success rate of the calls made,
-- latency of those calls, tokens, cost, and wasted cost: attempts whose
-- answer was not kept (every failed attempt, and answers of a delivery that
-- lost the race to another worker). Skips (cooldown, context window checked
-- before calling) are attempts without a call.
CREATE VIEW model_summary AS
SELECT batch_id, model, attempts, calls, ok, quality_failed, rate_limited, timeouts,
       calls - ok - quality_failed - rate_limited - timeouts AS errors,
       attempts - calls                                      AS skipped,
       CASE WHEN calls > 0 THEN ok::numeric / calls END      AS success_rate,
       p50_ms, p95_ms, p99_ms, input_tokens, output_tokens, cost_usd, wasted_usd
FROM (
    SELECT l.batch_id, l.model,
           count(*)                                                     AS attempts,
           count(*) FILTER (WHERE l.called)                             AS calls,
           count(*) FILTER (WHERE l.outcome = 'ok')                     AS ok,
           count(*) FILTER (WHERE l.outcome IN ('quality_failed', 'empty_response')) AS quality_failed,
           count(*) FILTER (WHERE l.outcome = 'rate_limited')           AS rate_limited,
           count(*) FILTER (WHERE l.outcome = 'timeout')                AS timeouts,
           percentile_cont(0.50) WITHIN GROUP (ORDER BY l.latency_ms) FILTER (WHERE l.called) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms) FILTER (WHERE l.called) AS p95_ms,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY l.latency_ms) FILTER (WHERE l.called) AS p99_ms,
           sum(l.input_tokens)                                          AS input_tokens,
           sum(l.output_tokens)                                         AS output_tokens,
           sum(l.cost_usd)                                              AS cost_usd,
           coalesce(sum(l.cost_usd) FILTER (WHERE NOT l.kept), 0)::numeric(18, 10) AS wasted_usd
    FROM (
        SELECT l.batch_id, l.model, l.outcome, l.latency_ms, l.input_tokens, l.output_tokens, l.cost_usd,
               l.outcome NOT IN ('cooldown_skip', 'canceled')
                   AND NOT (l.outcome = 'context_window' AND l.http_status IS NULL) AS called,
               (l.outcome = 'ok' AND r.delivery IS NOT NULL) AS kept
        FROM request_log l
        LEFT JOIN results r ON r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id
                           AND r.delivery = l.delivery AND r.status = 'succeeded'
    ) l
    GROUP BY l.batch_id, l.model
) m;

-- Per prompt worth a look, with the classifier's signals so that its
-- thresholds can be tuned:
--   under_routed           a simple or moderate prompt that failed a quality
--                          check (on its first model, or on a later one after
--                          an error there): it needed a stronger model;
--   over_routed_candidate  a moderate or complex prompt answered first try by
--                          its tier's first model although it is short (at
--                          most 20 words) with few keyword hits (at most 2):
--                          a cheaper tier might have done.
CREATE VIEW misrouting AS
SELECT r.batch_id, r.prompt_id, r.tier,
       CASE WHEN r.tier <> 'complex' AND a.quality_fails > 0 THEN 'under_routed'
            ELSE 'over_routed_candidate' END AS kind,
       a.first_model, a.first_outcome, r.model_used, r.status, a.attempts, a.quality_fails,
       r.word_count, r.token_count, r.complex_hits, r.moderate_hits, r.cost_usd, r.prompt
FROM results r
JOIN prompt_attempts a ON a.batch_id = r.batch_id AND a.prompt_id = r.prompt_id
WHERE (r.tier <> 'complex' AND a.quality_fails > 0)
   OR (r.tier <> 'simple' AND r.status = 'succeeded' AND a.attempts = 1
       AND r.model_used = a.first_model
       AND r.word_count <= 20 AND r.complex_hits + r.moderate_hits <= 2);

-- Per batch and tier: what was paid (results.cost_usd) against the same
-- tokens (the kept answers' input and output tokens) on the most expensive
-- and on the cheapest model of the batch's routes (model_prices), and on each
-- prompt's first model (what the tier would cost if nothing cascaded).
-- saved = strongest - paid (share of strongest); premium = paid - cheapest
-- (share of cheapest). Amounts are numeric(18, 10) like every cost column;
-- NULL where the batch has no model_prices rows.
CREATE VIEW savings AS
SELECT t.batch_id, t.tier, t.prompts, t.input_tokens, t.output_tokens, t.paid_usd,
       t.first_model_usd,
       hi.model                                        AS strongest_model,
       hi.usd                                          AS strongest_usd,
       hi.usd - t.paid_usd                             AS saved_usd,
       CASE WHEN hi.usd > 0 THEN (hi.usd - t.paid_usd) / hi.usd END AS saved_share,
       lo.model                                        AS cheapest_model,
       lo.usd                                          AS cheapest_usd,
       t.paid_usd - lo.usd                             AS premium_usd,
       CASE WHEN lo.usd > 0 THEN (t.paid_usd - lo.usd) / lo.usd END AS premium_share
FROM (
    SELECT r.batch_id, r.tier, count(*) AS prompts,
           sum(r.input_tokens) AS input_tokens, sum(r.output_tokens) AS output_tokens,
           sum(r.cost_usd) AS paid_usd,
           sum((r.input_tokens * p.input_usd_per_mtok + r.output_tokens * p.output_usd_per_mtok) / 1000000)::numeric(18, 10)
               AS first_model_usd
    FROM results r
    LEFT JOIN prompt_attempts a ON a.batch_id = r.batch_id AND a.prompt_id = r.prompt_id
    LEFT JOIN model_prices p ON p.batch_id = r.batch_id AND p.model = a.first_model
    GROUP BY r.batch_id, r.tier
) t
LEFT JOIN LATERAL (
    SELECT p.model,
           ((t.input_tokens * p.input_usd_per_mtok + t.output_tokens * p.output_usd_per_mtok) / 1000000)::numeric(18, 10) AS usd
    FROM model_prices p WHERE p.batch_id = t.batch_id
    ORDER BY 2 DESC, 1 LIMIT 1
) hi ON true
LEFT JOIN LATERAL (
    SELECT p.model,
           ((t.input_tokens * p.input_usd_per_mtok + t.output_tokens * p.output_usd_per_mtok) / 1000000)::numeric(18, 10) AS usd
    FROM model_prices p WHERE p.batch_id = t.batch_id
    ORDER BY 2 ASC, 1 LIMIT 1
) lo ON true;
