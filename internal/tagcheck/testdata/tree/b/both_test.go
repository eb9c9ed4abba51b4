//go:build nsmsim || !nsmsim

package b

func TestBoth(t *testing.T) {}
