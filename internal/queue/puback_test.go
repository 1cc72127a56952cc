package queue

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

var pubAckCases = []string{
	`{"stream":"PROMPTS","seq":1}`,
	`{"stream":"PROMPTS","seq":18446744073709551615,"duplicate":true}`,
	`{"stream":"PROMPTS","domain":"hub","seq":7,"duplicate":true}`,
	`{"stream":"PROMPTS","seq":7,"duplicate":false}`,
	`{"stream":"PROMPTS","seq":184467440737095516150}`, // overflows uint64
	`{"seq":7}`,
	`{"stream":"","seq":7}`,
	`{"stream":"PROMPTS","seq":7,}`,
	`{"stream":"PROMPTS","seq":-7}`,
	`{"stream":"PROMPTS","seq":07}`,
	`{"stream":7}`,
	`{"Stream":"PROMPTS","Duplicate":true}`,
	`{"stream":"PROMPTS","duplicate":"true"}`,
	`{"stream":"PROMPTS","duplicate":1}`,
	`{"stream":"PROMPTS","seq":true}`,
	`{"stream":"PROMPTS","seq":1,"stream":""}`,
	`{"stream":"PROMPTS","duplicate":true,"duplicate":false}`,
	`{ "stream": "PROMPTS", "seq": 1 }`,
	`{"stream":"PRO\"MPTS","seq":1}`,
	`{"stream":"PROMPTS","seq":1,"val":null}`,
	`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"PROMPTS","seq":0}`,
	`{"error":null,"stream":"PROMPTS","seq":1}`,
	`{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}`,
	`{}`,
	``,
	`null`,
	`{"stream":"PROMPTS"`,
	`not json`,
}

func TestParsePubAckMatchesTheFullDecode(t *testing.T) {
	for _, c := range pubAckCases {
		checkPubAck(t, []byte(c))
	}
}

func TestParsePubAckReadsTheAnswers(t *testing.T) {
	dup, err := parsePubAck([]byte(`{"stream":"PROMPTS","seq":7,"duplicate":true}`))
	if err != nil || !dup {
		t.Errorf("duplicate ack: %v, %v", dup, err)
	}
	dup, err = parsePubAck([]byte(`{"stream":"PROMPTS","seq":8}`))
	if err != nil || dup {
		t.Errorf("new message ack: %v, %v", dup, err)
	}
	_, err = parsePubAck([]byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"PROMPTS","seq":0}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStreamStoreFailed || apiErr.Code != 503 {
		t.Errorf("refusal: %v, want the APIError of code 503, err_code 10077", err)
	}
	if classifyPublishErr(err) != pubFull {
		t.Errorf("refusal classified %v, want pubFull", classifyPublishErr(err))
	}
	if _, err := parsePubAck([]byte(`{"seq":7}`)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
		t.Errorf("ack without a stream: %v, want ErrInvalidJSAck", err)
	}
}

func FuzzParsePubAck(f *testing.F) {
	for _, c := range pubAckCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPubAck(t, data)
	})
}

func checkPubAck(t *testing.T, data []byte) {
	t.Helper()
	gotDup, gotErr := parsePubAck(data)
	wantDup, wantErr := decodePubAck(data)
	if gotDup != wantDup || !sameAckErr(gotErr, wantErr) {
		t.Errorf("parsePubAck(%q) = %v, %v; the full decode: %v, %v", data, gotDup, gotErr, wantDup, wantErr)
	}
}

func sameAckErr(a, b error) bool {
	var ae, be *jetstream.APIError
	if errors.As(a, &ae) && errors.As(b, &be) {
		return *ae == *be
	}
	return errors.Is(a, b)
}
