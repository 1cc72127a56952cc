package cpuprofile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartWritesAProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := Start(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(filepath.Join(t.TempDir(), "second.prof")); err == nil {
		t.Error("a second profile started while one runs")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// pprof's format is gzipped protobuf.
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile of %d bytes does not start with gzip's magic: %q", len(b), b[:min(len(b), 8)])
	}
}

func TestStartNamesTheBadPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "cpu.prof")
	if _, err := Start(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
}
