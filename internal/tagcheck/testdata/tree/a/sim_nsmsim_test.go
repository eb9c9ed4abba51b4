//go:build nsmsim

package a

func openSimulator() {}
