package a

import "testing"

func TestShown(t *testing.T) {}
