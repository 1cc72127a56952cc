package metrics

import "sync"

// series caches the metrics Settled updates, by their label values, so
// that settling a prompt does not hash and validate the same label values
// again for each of its counters (prometheus' WithLabelValues). A series is
// looked up, and so created and exported, exactly when WithLabelValues
// would have been called: the cache changes nothing /metrics shows.
type series[K comparable, M any] struct {
	mu sync.RWMutex
	m  map[K]M
}

// get returns k's metric, from newM (called once per key) the first time.
func (s *series[K, M]) get(k K, newM func(K) M) M {
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v
	}
	if s.m == nil {
		s.m = make(map[K]M)
	}
	v = newM(k)
	s.m[k] = v
	return v
}
