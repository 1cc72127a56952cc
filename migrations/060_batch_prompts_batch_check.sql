-- 060 (issue 8): batch_prompts' reference to batches is checked once per
-- statement, not once per row.
--
-- enqueue records millions of ids, 10,000 per statement. The foreign key
-- batch_prompts_batch_id_fkey checked each row on its own (a SELECT ... FOR
-- KEY SHARE of the batches row per id): measured on the 2-core machine, 2.8 of
-- the 6.8 µs of Postgres CPU an inserted id cost. The same rules are kept by
-- triggers that look at each batch once per statement:
--
--   * every batch_prompts row inserted (or moved to another batch) names an
--     existing batch, whose row is locked FOR KEY SHARE until commit, as the
--     foreign key did (a concurrent DELETE of the batch waits); otherwise the
--     statement fails with SQLSTATE 23503 (foreign_key_violation) and the
--     constraint's old name, as before;
--   * deleting a batch deletes its prompts (was ON DELETE CASCADE);
--   * renaming a batch that has prompts fails with 23503 (was NO ACTION).
--
-- The functions keep the migration's search_path, so that they find the
-- tables of their own schema whatever the caller's.
ALTER TABLE batch_prompts DROP CONSTRAINT batch_prompts_batch_id_fkey;

CREATE FUNCTION batch_prompts_check_batches() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    missing text;
BEGIN
    PERFORM 1 FROM batches b
    WHERE b.batch_id IN (SELECT DISTINCT n.batch_id FROM batch_prompts_new n)
    FOR KEY SHARE OF b;
    SELECT d.batch_id INTO missing
    FROM (SELECT DISTINCT n.batch_id FROM batch_prompts_new n) d
    WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = d.batch_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "batch_prompts" violates foreign key constraint "batch_prompts_batch_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (batch_id)=(%s) is not present in table "batches".', missing);
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER batch_prompts_check_batches_insert
    AFTER INSERT ON batch_prompts
    REFERENCING NEW TABLE AS batch_prompts_new
    FOR EACH STATEMENT EXECUTE FUNCTION batch_prompts_check_batches();

-- An UPDATE that moves rows to another batch (nothing does today) is
-- checked row by row: a trigger on one column cannot have a transition
-- table, and one on every UPDATE would copy each canceled row.
CREATE FUNCTION batch_prompts_check_batch_moved() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    IF NEW.batch_id IS DISTINCT FROM OLD.batch_id THEN
        PERFORM 1 FROM batches b WHERE b.batch_id = NEW.batch_id FOR KEY SHARE OF b;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "batch_prompts" violates foreign key constraint "batch_prompts_batch_id_fkey"'
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (batch_id)=(%s) is not present in table "batches".', NEW.batch_id);
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER batch_prompts_check_batch_moved
    AFTER UPDATE OF batch_id ON batch_prompts
    FOR EACH ROW EXECUTE FUNCTION batch_prompts_check_batch_moved();

CREATE FUNCTION batches_delete_prompts() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    DELETE FROM batch_prompts p USING batches_old o WHERE p.batch_id = o.batch_id;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER batches_delete_prompts
    AFTER DELETE ON batches
    REFERENCING OLD TABLE AS batches_old
    FOR EACH STATEMENT EXECUTE FUNCTION batches_delete_prompts();

CREATE FUNCTION batches_check_renamed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    IF NEW.batch_id IS DISTINCT FROM OLD.batch_id
       AND EXISTS (SELECT 1 FROM batch_prompts p WHERE p.batch_id = OLD.batch_id) THEN
        RAISE EXCEPTION 'update or delete on table "batches" violates foreign key constraint "batch_prompts_batch_id_fkey" on table "batch_prompts"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (batch_id)=(%s) is still referenced from table "batch_prompts".', OLD.batch_id);
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER batches_check_renamed
    AFTER UPDATE OF batch_id ON batches
    FOR EACH ROW EXECUTE FUNCTION batches_check_renamed();
