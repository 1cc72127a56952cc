package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"

	"github.com/promptcascade/promptcascade/internal/prompt"
)

// ContentHash is the SHA-256 of what job asks a model: its prompt, system
// prompt, max_tokens and metadata (compacted, so that spacing does not
// count). Batch, id, position and enqueue time are not part of it. Two jobs
// with the same id and hash are the same request (a re-run of enqueue);
// the same id with another hash is a different prompt, which enqueue
// refuses to take for a duplicate.
func ContentHash(job prompt.Job) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(job.Prompt))
	field([]byte(job.System))
	binary.BigEndian.PutUint64(n[:], uint64(job.MaxTokens))
	h.Write(n[:])
	meta := bytes.TrimSpace(job.Metadata)
	if bytes.Equal(meta, []byte("null")) {
		meta = nil
	}
	var compact bytes.Buffer
	if len(meta) > 0 && json.Compact(&compact, meta) == nil {
		meta = compact.Bytes()
	}
	field(meta)
	return h.Sum(nil)
}
