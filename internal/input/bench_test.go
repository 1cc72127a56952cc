package input

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchJSONL is 10,000 typical JSONL lines (about 2.3 MB).
var benchJSONL = func() []byte {
	var b bytes.Buffer
	for i := range 10_000 {
		fmt.Fprintf(&b, `{"id": "p-%05d", "prompt": "Explain how a B-tree index speeds up range queries in Postgres, and compare it with a hash index for equality lookups on a table of %d rows.", "system": "You are a concise database tutor.", "max_tokens": 512, "metadata": {"source": "bench", "n": %d}}`+"\n", i, i*10, i)
	}
	return b.Bytes()
}()

func BenchmarkReaderJSONL(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchJSONL)))
	lines := 0
	for b.Loop() {
		rd, err := NewReader(bytes.NewReader(benchJSONL), "bench.jsonl", FormatJSONL, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			lines++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
}
