package store

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Migration 060 replaced batch_prompts' foreign key by statement triggers:
// the rules stay those of the foreign key. A prompt of an unknown batch is
// refused (23503), also by an insert that has good rows too; deleting a
// batch deletes its prompts, and no other batch's; renaming a batch that
// has prompts is refused, one without prompts is not; moving a prompt to
// an unknown batch is refused.
func TestBatchPromptsNeedTheirBatch(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := t.Context()
	exec := func(sql string, args ...any) error {
		_, err := st.pool.Exec(ctx, sql, args...)
		return err
	}
	fk := func(what string, err error) {
		t.Helper()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23503" {
			t.Errorf("%s: %v, want SQLSTATE 23503", what, err)
		}
	}
	if _, err := st.RecordEnqueued(ctx, "a", enq("1", "2")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordEnqueued(ctx, "b", enq("1")); err != nil {
		t.Fatal(err)
	}
	fk("a prompt of an unknown batch", exec(`INSERT INTO batch_prompts (batch_id, prompt_id) VALUES ('nope', 'x')`))
	fk("one bad row among good ones", exec(`INSERT INTO batch_prompts (batch_id, prompt_id) VALUES ('a', '3'), ('nope', 'x')`))
	fk("a prompt moved to an unknown batch", exec(`UPDATE batch_prompts SET batch_id = 'nope' WHERE batch_id = 'a' AND prompt_id = '1'`))
	fk("renaming a batch with prompts", exec(`UPDATE batches SET batch_id = 'renamed' WHERE batch_id = 'a'`))
	if err := exec(`UPDATE batch_prompts SET canceled_at = now() WHERE batch_id = 'a'`); err != nil {
		t.Errorf("an update of other columns: %v", err)
	}
	if err := st.UpsertBatch(ctx, "empty", 0); err != nil {
		t.Fatal(err)
	}
	if err := exec(`UPDATE batches SET batch_id = 'renamed' WHERE batch_id = 'empty'`); err != nil {
		t.Errorf("renaming a batch without prompts: %v", err)
	}
	if err := exec(`DELETE FROM batches WHERE batch_id = 'a'`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, st, `SELECT count(*) FROM batch_prompts WHERE batch_id = 'a'`); n != 0 {
		t.Errorf("deleting batch a left %d of its prompts", n)
	}
	if n := count(t, st, `SELECT count(*) FROM batch_prompts`); n != 1 {
		t.Errorf("%d prompts left, want batch b's 1", n)
	}
}
