package router_test

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time the calling OS thread has used (user +
// system), so that a benchmark locked to its thread can report its speed
// per core second whatever else the machine runs.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
