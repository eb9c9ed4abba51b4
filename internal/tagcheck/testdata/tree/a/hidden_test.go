//go:build nsmsim

package a

import "testing"

func TestHidden(t *testing.T)             {}
func Test_underscore(t *testing.T)        {}
func Testable(t *testing.T)               {} // not a test: lower case after the prefix
func FuzzHidden(f *testing.F)             {}
func BenchmarkHidden(b *testing.B)        {}
func Example()                            {}
func helper(t *testing.T)                 {}
func (x fixture) TestMethod(t *testing.T) {}

type fixture struct{}
