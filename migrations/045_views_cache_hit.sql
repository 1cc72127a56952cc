-- 045_views_cache_hit: an answer from the response cache (outcome
-- 'cache_hit', $0, no call) is an attempt of its prompt (prompt_attempts
-- counts it, as results.attempts does) but neither a call nor an error
-- nor a skip of its model: model_summary leaves it out of calls, errors,
-- latency percentiles and skipped, and counts it in the new last column
-- cache_hits. Its prompt is succeeded, as with any kept answer.

CREATE OR REPLACE VIEW model_summary AS
SELECT batch_id, model, attempts, calls, ok, quality_failed, rate_limited, timeouts,
       calls - ok - quality_failed - rate_limited - timeouts AS errors,
       attempts - calls - cache_hits                         AS skipped,
       CASE WHEN calls > 0 THEN ok::numeric / calls END      AS success_rate,
       p50_ms, p95_ms, p99_ms, input_tokens, output_tokens, cost_usd, wasted_usd,
       shadow_usd, cache_hits
FROM (
    SELECT l.batch_id, l.model,
           count(*) FILTER (WHERE NOT l.shadow)                         AS attempts,
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
           coalesce(sum(l.cost_usd) FILTER (WHERE NOT l.kept AND NOT l.shadow), 0)::numeric(18, 10) AS wasted_usd,
           coalesce(sum(l.cost_usd) FILTER (WHERE l.shadow), 0)::numeric(18, 10) AS shadow_usd,
           count(*) FILTER (WHERE l.outcome = 'cache_hit')              AS cache_hits
    FROM (
        SELECT l.batch_id, l.model, l.outcome, l.latency_ms, l.input_tokens, l.output_tokens, l.cost_usd,
               l.outcome = 'shadow' AS shadow,
               l.outcome NOT IN ('cooldown_skip', 'canceled', 'shadow', 'cache_hit')
                   AND NOT (l.outcome = 'context_window' AND l.http_status IS NULL) AS called,
               (l.outcome = 'ok' AND r.delivery IS NOT NULL) AS kept
        FROM request_log l
        LEFT JOIN results r ON r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id
                           AND r.delivery = l.delivery AND r.status = 'succeeded'
    ) l
    GROUP BY l.batch_id, l.model
) m;
