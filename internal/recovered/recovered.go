// Package recovered describes a recovered panic for a log line without the
// data it carried: a panic's value can be built from the input (or a key),
// and a Go traceback prints the argument words of every frame.
package recovered

import (
	"fmt"
	"runtime"
	"strings"
)

// maxFrames bounds the frames Stack reports.
const maxFrames = 64

// Value names what was recovered: a runtime error's message, which the
// runtime writes (an index, a nil dereference, a failed conversion), or else
// only the value's type.
func Value(v any) string {
	if e, ok := v.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("panic(%T)", v)
}

// Stack is the panicking goroutine's stack as "function file:line" lines,
// innermost first, without argument words. Call it from the deferred
// function that recovered: the panicking frames are still below it then.
func Stack() string {
	pc := make([]uintptr, maxFrames+8)
	pc = pc[:runtime.Callers(1, pc)]
	frames := runtime.CallersFrames(pc)
	var lines []string
	panicked := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicked, lines = true, lines[:0] // the frames above are the recovering ones
		case panicked || !strings.HasPrefix(f.Function, "runtime."):
			lines = append(lines, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		}
		if !more || len(lines) == maxFrames {
			break
		}
	}
	return strings.Join(lines, "\n")
}
