// Package bounded is a concurrency-safe map with a fixed capacity: when
// full, an arbitrary half of its entries is dropped. It caches values that
// can always be recomputed (verified caller chains, derived public keys), so
// forgetting is safe and memory stays bounded whatever the traffic.
package bounded

import "sync"

// Map is a bounded map. The zero value is not usable; use New.
type Map[K comparable, V any] struct {
	mu    sync.RWMutex
	limit int
	m     map[K]V
}

// New returns a map holding at most limit entries.
func New[K comparable, V any](limit int) *Map[K, V] {
	return &Map[K, V]{limit: max(limit, 2), m: make(map[K]V)}
}

// Get returns the value for k.
func (c *Map[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

// Put stores v for k, first dropping half the entries if the map is full.
func (c *Map[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.limit {
		n := 0
		for old := range c.m {
			delete(c.m, old)
			if n++; n >= c.limit/2 {
				break
			}
		}
	}
	c.m[k] = v
}

// Len returns the number of entries.
func (c *Map[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
