package procs_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/procs"
)

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p, max    int
		cores     float64
		low, want int
	}{
		{"idle_stays_at_one", 1, 8, 0.01, 50, 1},
		{"light_use_of_one_p_stays", 1, 8, 0.7, 0, 1},
		{"busy_one_p_gets_every_cpu_at_once", 1, 8, 0.95, 0, 8},
		{"busy_some_ps_get_every_cpu_at_once", 3, 8, 2.9, 0, 8},
		{"half_busy_keeps_its_ps", 4, 8, 2, 0, 4},
		{"low_use_shrinks_only_after_a_second", 2, 8, 0.3, 9, 2},
		{"low_use_for_a_second_shrinks_by_one", 3, 8, 0.3, 10, 2},
		{"never_below_one", 1, 8, 0, 100, 1},
		{"over_max_comes_back_to_max", 4, 2, 0.1, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := procs.Next(tc.p, tc.max, tc.cores, tc.low); got != tc.want {
				t.Fatalf("Next(%d, %d, %.2f, %d) = %d, want %d", tc.p, tc.max, tc.cores, tc.low, got, tc.want)
			}
		})
	}
}

func TestAdaptLeavesAnOperatorsSetting(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	before := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(before)
	ctx, cancel := context.WithTimeout(context.Background(), 3*procs.Interval)
	defer cancel()
	procs.Adapt(ctx) // returns at once when disabled
	if ctx.Err() != nil {
		t.Fatal("Adapt ran although GOMAXPROCS is set in the environment")
	}
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("GOMAXPROCS %d, want the operator's 2", got)
	}
}
