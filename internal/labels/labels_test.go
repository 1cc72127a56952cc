package labels_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/promptcascade/promptcascade/internal/labels"
)

func TestRouteLLMGSM8K(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../testdata/routellm/gsm8k_responses.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := labels.Read(f, "gsm8k.csv", labels.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bad) > 0 {
		t.Fatalf("bad rows in the published file: %v", s.Bad[0])
	}
	wantModels := []string{"mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"}
	if strings.Join(s.Models, ",") != strings.Join(wantModels, ",") {
		t.Fatalf("models = %q, want %q (response columns are not models)", s.Models, wantModels)
	}
	if len(s.Items) != 1319 {
		t.Fatalf("%d items, want 1319", len(s.Items))
	}
	weak, strong := 0, 0
	for _, it := range s.Items {
		if it.Correct[wantModels[0]] {
			weak++
		}
		if it.Correct[wantModels[1]] {
			strong++
		}
	}
	// The data README: weak accuracy 63.8%, strong 85.7%.
	if w, st := float64(weak)/1319, float64(strong)/1319; w < 0.637 || w > 0.639 || st < 0.856 || st > 0.858 {
		t.Errorf("accuracies %.4f / %.4f, want 0.638 / 0.857", w, st)
	}
	first := s.Items[0]
	if first.ID != "2" || !strings.HasPrefix(first.Prompt, "Janet’s ducks") {
		t.Errorf("first item = %q %.20q; want id 2 (the line it starts on) and Janet's ducks", first.ID, first.Prompt)
	}
	// Multi-line answers make records span lines: ids are the lines records start on.
	if it := s.Items[1]; it.ID != strconv.Itoa(it.Line) || it.Line <= 3 {
		t.Errorf("second item id %q: the first record spans several lines", s.Items[1].ID)
	}
}

func TestReadCSVBadRows(t *testing.T) {
	t.Parallel()
	in := "id,prompt,weak,strong,weak_response\n" +
		"a,what is 1+1,True,True,2\n" +
		"b,hard one,maybe,True,x\n" +
		"c,too few,True\n" +
		"a,repeated id,False,True,x\n" +
		"d,  ,False,True,x\n" +
		"e,\"multi\nline\",FALSE,true,x\n"
	s, err := labels.Read(strings.NewReader(in), "l.csv", labels.Auto)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range s.Items {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, ",") != "a,e" {
		t.Errorf("kept ids %v, want a,e", ids)
	}
	if e := s.Items[1]; e.Correct["weak"] || !e.Correct["strong"] || e.Prompt != "multi\nline" {
		t.Errorf("item e = %+v", e)
	}
	var bad []string
	for _, e := range s.Bad {
		bad = append(bad, e.Error())
	}
	want := []string{
		`l.csv:3: column "weak": want True or False, got "maybe"`,
		`l.csv:4: 3 fields, the header has 5`,
		`l.csv:5: id "a" is already used on line 2`,
		`l.csv:6: empty prompt`,
	}
	if strings.Join(bad, "\n") != strings.Join(want, "\n") {
		t.Errorf("bad rows:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadCSVHeaderErrors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "l.csv: empty labels file",
		"question,weak\nx,True\n": "l.csv:1: no prompt column",
		"prompt,weak_response\n":  "l.csv:1: no model columns",
		"prompt,a,a\n":            `l.csv:1: model column "a" is named twice`,
	} {
		_, err := labels.Read(strings.NewReader(in), "l.csv", labels.CSV)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Read(%q) = %v, want %q...", in, err, want)
		}
	}
}

func TestReadJSONL(t *testing.T) {
	t.Parallel()
	in := "\ufeff" + `{"id": "q1", "prompt": "hi", "correct": {"strong": true, "cheap": false}}` + "\n" +
		"\n" +
		`{"prompt": "no id", "correct": {"cheap": true, "strong": true, "third": false}}` + "\n" +
		`{"id": 7, "prompt": "bad", "correct": {"cheap": "yes"}}` + "\n" +
		`{"id": 8, "prompt": "empty", "correct": {}}` + "\n" +
		`{"id": 9, "correct": {"cheap": true}}` + "\n" +
		`not json` + "\n" +
		`{"id": 10, "prompt": "last", "correct": {"cheap": true}}`
	s, err := labels.Read(strings.NewReader(in), "l.jsonl", labels.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Models, ","); got != "strong,cheap,third" {
		t.Errorf("models = %s, want the order of first appearance strong,cheap,third", got)
	}
	var ids []string
	for _, it := range s.Items {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, ",") != "q1,3,10" {
		t.Errorf("ids = %v, want q1,3,10", ids)
	}
	if len(s.Bad) != 4 {
		t.Fatalf("bad = %v, want 4", s.Bad)
	}
	for i, line := range []string{"l.jsonl:4: correct: cheap: want true or false", "l.jsonl:5: correct: want an object",
		`l.jsonl:6: missing "prompt"`, "l.jsonl:7: not a JSON object"} {
		if !strings.HasPrefix(s.Bad[i].Error(), line) {
			t.Errorf("bad[%d] = %v, want %s...", i, s.Bad[i], line)
		}
	}
}
