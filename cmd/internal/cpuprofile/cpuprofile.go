// Package cpuprofile is the --cpuprofile flag of the commands: a CPU
// profile of the whole run, for go tool pprof.
package cpuprofile

import (
	"os"
	"runtime/pprof"
)

// Start writes a CPU profile of the process to path until stop is called;
// stop's error is the file's (a profile not written in full).
func Start(path string) (stop func() error, err error) {
	f, err := os.Create(path) //nolint:gosec // the operator's own --cpuprofile path
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
