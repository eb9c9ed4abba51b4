//go:build !nsmsim

package a

func TestOnlyUntagged(t *testing.T) {}
