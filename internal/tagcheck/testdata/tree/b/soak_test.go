//go:build soak

package b

func TestSoak(t *testing.T) {}
