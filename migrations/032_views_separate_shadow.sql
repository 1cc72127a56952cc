-- 032_views_separate_shadow: shadow labelling's calls (outcome 'shadow': the
-- tier above's answer and the judge's verdict, see "Labels without effort")
-- are not attempts of the prompt's cascade. prompt_attempts leaves them out
-- of first_model, attempts and quality_fails (spent_usd still counts them,
-- as results.cost_usd does); model_summary leaves them out of attempts,
-- calls, outcomes, latency and wasted cost, and shows their spend on its own
-- in shadow_usd (cost_usd still includes it: it was paid to that model).

CREATE OR REPLACE VIEW prompt_attempts AS
SELECT batch_id, prompt_id,
       (array_agg(model ORDER BY delivery, attempt, started_at) FILTER (WHERE outcome <> 'shadow'))[1]   AS first_model,
       (array_agg(outcome ORDER BY delivery, attempt, started_at) FILTER (WHERE outcome <> 'shadow'))[1] AS first_outcome,
       count(*) FILTER (WHERE outcome <> 'shadow')                    AS attempts,
       count(*) FILTER (WHERE outcome IN ('quality_failed', 'empty_response')) AS quality_fails,
       sum(cost_usd)                                                  AS spent_usd
FROM request_log
GROUP BY batch_id, prompt_id;

CREATE OR REPLACE VIEW model_summary AS
SELECT batch_id, model, attempts, calls, ok, quality_failed, rate_limited, timeouts,
       calls - ok - quality_failed - rate_limited - timeouts AS errors,
       attempts - calls                                      AS skipped,
       CASE WHEN calls > 0 THEN ok::numeric / calls END      AS success_rate,
       p50_ms, p95_ms, p99_ms, input_tokens, output_tokens, cost_usd, wasted_usd,
       shadow_usd
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
           coalesce(sum(l.cost_usd) FILTER (WHERE l.shadow), 0)::numeric(18, 10) AS shadow_usd
    FROM (
        SELECT l.batch_id, l.model, l.outcome, l.latency_ms, l.input_tokens, l.output_tokens, l.cost_usd,
               l.outcome = 'shadow' AS shadow,
               l.outcome NOT IN ('cooldown_skip', 'canceled', 'shadow')
                   AND NOT (l.outcome = 'context_window' AND l.http_status IS NULL) AS called,
               (l.outcome = 'ok' AND r.delivery IS NOT NULL) AS kept
        FROM request_log l
        LEFT JOIN results r ON r.batch_id = l.batch_id AND r.prompt_id = l.prompt_id
                           AND r.delivery = l.delivery AND r.status = 'succeeded'
    ) l
    GROUP BY l.batch_id, l.model
) m;
