-- 031_label_misrouting: misrouting measured against labels (migration 020),
-- where a prompt's labels say which models answered it correctly.
--
-- Labels name models as their file does (RouteLLM: gpt-4-1106-preview,
-- mixtral-8x7b-instruct-v0.1); label_models maps such a name to a model of
-- the routes. A label whose model is already a routes model needs no row.
--   INSERT INTO label_models VALUES ('gpt-4-1106-preview', 'openai/gpt-4o');
CREATE TABLE label_models (
    label_model text PRIMARY KEY CHECK (label_model <> ''),
    model       text NOT NULL CHECK (model <> '')
);

-- Per batch, labelled prompt and routes model: the model's prices in the
-- batch (model_prices) and whether every label of the prompt for it says
-- correct (conflicting labels count as incorrect).
CREATE VIEW label_verdicts AS
SELECT p.batch_id, l.prompt_sha256, p.model,
       p.input_usd_per_mtok, p.output_usd_per_mtok,
       p.input_usd_per_mtok + p.output_usd_per_mtok AS price_rank,
       bool_and(l.correct) AS correct
FROM labels l
LEFT JOIN label_models a ON a.label_model = l.model
JOIN model_prices p ON p.model = coalesce(a.model, l.model)
GROUP BY p.batch_id, l.prompt_sha256, p.model, p.input_usd_per_mtok, p.output_usd_per_mtok;

-- Per prompt whose labels show a better choice (models ranked by input plus
-- output price per million tokens):
--   over_routed   a cheaper model of the routes answered it correctly:
--                 instead_model is the cheapest such model;
--   under_routed  the answer kept was labelled incorrect (or the prompt
--                 failed) and a pricier model answered it correctly:
--                 instead_model is the cheapest such model.
-- instead_usd is what instead_model charges for the kept answer's tokens.
CREATE VIEW label_misrouting AS
SELECT r.batch_id, r.prompt_id, r.tier, r.status, r.model_used, u.correct AS used_correct,
       CASE WHEN c.model IS NOT NULL THEN 'over_routed' ELSE 'under_routed' END AS kind,
       coalesce(c.model, s.model) AS instead_model,
       ((r.input_tokens * coalesce(c.input_usd_per_mtok, s.input_usd_per_mtok)
         + r.output_tokens * coalesce(c.output_usd_per_mtok, s.output_usd_per_mtok)) / 1000000)::numeric(18, 10)
           AS instead_usd,
       r.cost_usd, r.word_count, r.token_count, r.complex_hits, r.moderate_hits, r.prompt
FROM results r
JOIN model_prices up ON up.batch_id = r.batch_id AND up.model = r.model_used
LEFT JOIN label_verdicts u ON u.batch_id = r.batch_id AND u.prompt_sha256 = r.prompt_sha256 AND u.model = r.model_used
LEFT JOIN LATERAL (
    SELECT v.model, v.input_usd_per_mtok, v.output_usd_per_mtok FROM label_verdicts v
    WHERE v.batch_id = r.batch_id AND v.prompt_sha256 = r.prompt_sha256 AND v.correct
      AND v.price_rank < up.input_usd_per_mtok + up.output_usd_per_mtok
    ORDER BY v.price_rank, v.model LIMIT 1
) c ON true
LEFT JOIN LATERAL (
    SELECT v.model, v.input_usd_per_mtok, v.output_usd_per_mtok FROM label_verdicts v
    WHERE v.batch_id = r.batch_id AND v.prompt_sha256 = r.prompt_sha256 AND v.correct
      AND v.price_rank > up.input_usd_per_mtok + up.output_usd_per_mtok
      AND (u.correct IS FALSE OR r.status = 'failed')
    ORDER BY v.price_rank, v.model LIMIT 1
) s ON true
WHERE c.model IS NOT NULL OR s.model IS NOT NULL;
