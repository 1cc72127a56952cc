package router

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// The router file: a JSON envelope naming the format and its version, with
// the SHA-256 of the model object (its compact JSON form) beside it:
//
//	{"format": "promptcascade-router", "version": 1, "sha256": "…", "model": {…}}
//
// Load refuses another format, another version, a checksum that does not
// match, and a model whose fields are missing, out of range or not finite.
const (
	FileFormat  = "promptcascade-router"
	FileVersion = 1
)

type envelope struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Model   json.RawMessage `json:"model"`
}

type fileModel struct {
	Meta      Meta          `json:"meta"`
	Features  Features      `json:"features"`
	Bias      float64       `json:"bias"`
	Dense     []denseWeight `json:"dense"`
	Hashed    hashedWeights `json:"hashed"`
	Quantiles []float64     `json:"quantiles"`
	Seen      string        `json:"training_prompts"` // base64 Bloom filter of the training prompts
}

type denseWeight struct {
	Name   string  `json:"name"`
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
	Weight float64 `json:"weight"`
}

// hashedWeights lists the non-zero hashed weights.
type hashedWeights struct {
	Index  []uint32  `json:"index"`
	Weight []float64 `json:"weight"`
}

// FileError is a router file that cannot be used.
type FileError struct {
	File   string
	Reason string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("router file %s: %s", e.File, e.Reason)
}

// Write writes r to w in the router file format.
func (r *Router) Write(w io.Writer) error {
	fm := fileModel{Meta: r.Meta, Features: r.Features, Bias: r.bias, Quantiles: r.quantiles,
		Seen: base64.StdEncoding.EncodeToString(r.seen)}
	for i := range numDense {
		fm.Dense = append(fm.Dense, denseWeight{denseNames[i], r.denseMean[i], r.denseStd[i], r.denseW[i]})
	}
	for i, v := range r.w {
		if v != 0 {
			fm.Hashed.Index = append(fm.Hashed.Index, uint32(i))
			fm.Hashed.Weight = append(fm.Hashed.Weight, v)
		}
	}
	body, err := json.Marshal(fm)
	if err != nil {
		return fmt.Errorf("router: encode: %w", err)
	}
	sum := sha256.Sum256(body)
	out, err := json.Marshal(envelope{Format: FileFormat, Version: FileVersion, SHA256: hex.EncodeToString(sum[:]), Model: body})
	if err != nil {
		return fmt.Errorf("router: encode: %w", err)
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// WriteFile writes r to path, through a temporary file renamed into place.
func (r *Router) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := errors.Join(r.Write(f), f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// LoadFile reads and validates the router file at path.
func LoadFile(path string) (*Router, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{File: path, Reason: err.Error()}
	}
	return Parse(path, b)
}

// maxFileBytes bounds a router file (a 2^24-bucket router with every weight
// set is about 400 MB; real ones are well under 10 MB).
const maxFileBytes = 512 << 20

// Parse validates a router file's bytes; name is used in errors.
func Parse(name string, b []byte) (*Router, error) {
	bad := func(format string, a ...any) error { return &FileError{File: name, Reason: fmt.Sprintf(format, a...)} }
	if len(b) > maxFileBytes {
		return nil, bad("%d bytes, more than a router file can be", len(b))
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, bad("not a router file (want JSON with format %q): %v", FileFormat, err)
	}
	if env.Format != FileFormat {
		return nil, bad("format is %q, want %q", env.Format, FileFormat)
	}
	if env.Version != FileVersion {
		return nil, bad("version %d is not supported (this build reads version %d); retrain with `cascadectl router train`", env.Version, FileVersion)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.Model); err != nil || len(env.Model) == 0 {
		return nil, bad("no model object")
	}
	sum := sha256.Sum256(compact.Bytes())
	if got := hex.EncodeToString(sum[:]); got != env.SHA256 {
		return nil, bad("checksum mismatch: the model's sha256 is %s, the file says %q (the file is corrupt or was edited)", got, env.SHA256)
	}
	var fm fileModel
	dec := json.NewDecoder(bytes.NewReader(env.Model))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fm); err != nil {
		return nil, bad("model: %v", err)
	}
	r, err := fm.router()
	if err != nil {
		return nil, bad("model: %v", err)
	}
	return r, nil
}

func (fm *fileModel) router() (*Router, error) {
	f := fm.Features
	if f.HashBits < 8 || f.HashBits > 24 {
		return nil, fmt.Errorf("features.hash_bits: must be in 8..24, got %d", f.HashBits)
	}
	r := &Router{Features: f, Meta: fm.Meta, bias: fm.Bias, w: make([]float64, 1<<f.HashBits)}
	if !finite(fm.Bias) {
		return nil, errors.New("bias: not a finite number")
	}
	if len(fm.Dense) != numDense {
		return nil, fmt.Errorf("dense: %d signals, this build computes %d", len(fm.Dense), numDense)
	}
	for i, d := range fm.Dense {
		if d.Name != denseNames[i] {
			return nil, fmt.Errorf("dense[%d]: signal %q, want %q", i, d.Name, denseNames[i])
		}
		if !finite(d.Mean) || !finite(d.Weight) || !finite(d.Std) || d.Std <= 0 {
			return nil, fmt.Errorf("dense[%d] (%s): mean, std and weight must be finite and std > 0", i, d.Name)
		}
		r.denseMean[i], r.denseStd[i], r.denseW[i] = d.Mean, d.Std, d.Weight
	}
	h := fm.Hashed
	if len(h.Index) != len(h.Weight) {
		return nil, fmt.Errorf("hashed: %d indexes but %d weights", len(h.Index), len(h.Weight))
	}
	for j, i := range h.Index {
		if int(i) >= len(r.w) {
			return nil, fmt.Errorf("hashed.index[%d]: %d is out of range for %d buckets", j, i, len(r.w))
		}
		if !finite(h.Weight[j]) {
			return nil, fmt.Errorf("hashed.weight[%d]: not a finite number", j)
		}
		r.w[i] = h.Weight[j]
	}
	q := fm.Quantiles
	if len(q) != numQuantiles {
		return nil, fmt.Errorf("quantiles: %d values, want %d", len(q), numQuantiles)
	}
	for i, v := range q {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("quantiles[%d]: %v is not in [0,1]", i, v)
		}
	}
	if !slices.IsSorted(q) {
		return nil, errors.New("quantiles: not in increasing order")
	}
	r.quantiles = q
	seen, err := base64.StdEncoding.DecodeString(fm.Seen)
	if err != nil || len(seen) != bloomBytes {
		return nil, fmt.Errorf("training_prompts: want %d bytes of base64", bloomBytes)
	}
	r.seen = seen
	if fm.Meta.Cheap == "" || fm.Meta.Strong == "" {
		return nil, errors.New("meta: cheap and strong models must be named")
	}
	return r, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
