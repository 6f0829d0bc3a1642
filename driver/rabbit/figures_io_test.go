package rabbit_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/internal/rabbittest"
)

// TestFigures logs call and cast rates on a private broker (set
// GOSLO_RABBIT_FIGURES=1; run without -race for meaningful numbers).
func TestFigures(t *testing.T) {
	if os.Getenv("GOSLO_RABBIT_FIGURES") == "" {
		t.Skip("GOSLO_RABBIT_FIGURES not set")
	}
	n := rabbittest.Start(t)
	n.AddVhost("goslo-figures")
	srvT := open(t, n, "goslo-figures", nil)
	cliT := open(t, n, "goslo-figures", nil)
	e := newEcho("s")
	e.seen = make(chan *driver.Request, 1<<16)
	listen(t, srvT, compat.Target{Topic: "fig", Server: "s"}, e.handle)
	target := compat.Target{Topic: "fig", Server: "s"}

	const seq = 2000
	began := time.Now()
	for i := 0; i < seq; i++ {
		_, err := cliT.Call(ctxT(t, 10*time.Second), target, reqMsg("echo", "i", int64(i)))
		require.NoError(t, err)
	}
	d := time.Since(began)
	t.Logf("sequential calls: %d in %v (%.0f/s, %v each)", seq, d.Round(time.Millisecond), float64(seq)/d.Seconds(), d/seq)

	for _, workers := range []int{8, 32} {
		const total = 8000
		began = time.Now()
		var wg sync.WaitGroup
		per := total / workers
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if _, err := cliT.Call(ctxT(t, 30*time.Second), target, reqMsg("echo")); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		d = time.Since(began)
		t.Logf("concurrent calls: %d callers, %d calls in %v (%.0f/s)", workers, total, d.Round(time.Millisecond), float64(total)/d.Seconds())
	}

	began = time.Now()
	for i := 0; i < seq; i++ {
		require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "fig-nobody"}, reqMsg("x")))
	}
	d = time.Since(began)
	t.Logf("sequential confirmed casts: %d in %v (%.0f/s)", seq, d.Round(time.Millisecond), float64(seq)/d.Seconds())
}
