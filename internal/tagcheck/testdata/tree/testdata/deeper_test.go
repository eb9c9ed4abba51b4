//go:build nsmsim

package testdata

func TestInTestdata(t *testing.T) {}
