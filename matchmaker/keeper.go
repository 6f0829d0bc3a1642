package matchmaker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Keeper keeps a registration alive, as the reference's target updater
// does: it registers at once, then every period (zmq_target_update), with
// the TTL its register function applies (zmq_target_expire). When Redis is
// down it logs once per outage and retries every period (at least every
// 10 s, as the reference does on MatchmakerUnavailable), resuming by itself.
// Stop unregisters; Close stops without unregistering (records then expire,
// like a peer that dies).
type Keeper struct {
	register   func(context.Context) error
	unregister func(context.Context) error
	period     time.Duration
	log        *slog.Logger

	cancel   context.CancelFunc
	done     chan struct{}
	kick     chan struct{}
	unfollow func() // under mu
	stopOnce sync.Once
	mu       sync.Mutex
	lastErr  error
	count    int
}

// StartKeeper registers once synchronously (the error, if any, is
// returned but the keeper keeps trying) and then in the background until
// ctx ends, Stop or Close.
func StartKeeper(ctx context.Context, register, unregister func(context.Context) error, period time.Duration, log *slog.Logger) (*Keeper, error) {
	if log == nil {
		log = slog.Default()
	}
	if period <= 0 {
		period = 180 * time.Second
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &Keeper{register: register, unregister: unregister, period: period, log: log, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	err := k.once(kctx)
	go k.loop(kctx)
	return k, err
}

func (k *Keeper) once(ctx context.Context) error {
	err := k.register(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		if k.lastErr == nil {
			k.log.Warn("matchmaker: registration failed; retrying", "err", err)
		}
		k.lastErr = err
		return err
	}
	if err == nil {
		if k.lastErr != nil {
			k.log.Info("matchmaker: registration resumed")
		}
		k.lastErr = nil
		k.count++
	}
	return err
}

func (k *Keeper) loop(ctx context.Context) {
	defer close(k.done)
	for {
		wait := k.period
		k.mu.Lock()
		failing := k.lastErr != nil
		k.mu.Unlock()
		if failing && wait > 10*time.Second {
			wait = 10 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-k.kick:
			t.Stop()
		}
		_ = k.once(ctx)
	}
}

// Kick asks for a registration now (not waiting for the period), as when
// the backend came back after an outage; it never blocks.
func (k *Keeper) Kick() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Follow makes the keeper re-register as soon as mm reports that its
// backend came back or reconnected (when mm is a Recoverer), rather than
// at its next period. Stop and Close end it.
func (k *Keeper) Follow(mm Matchmaker) {
	r, ok := mm.(Recoverer)
	if !ok {
		return
	}
	cancel := r.OnRecovered(func() {
		k.log.Info("matchmaker: backend recovered; registering again")
		k.Kick()
	})
	k.mu.Lock()
	k.unfollow = cancel
	k.mu.Unlock()
}

func (k *Keeper) stopFollowing() {
	k.mu.Lock()
	f := k.unfollow
	k.unfollow = nil
	k.mu.Unlock()
	if f != nil {
		f()
	}
}

// Registrations is how many registrations succeeded so far.
func (k *Keeper) Registrations() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.count
}

// Stop ends the loop and unregisters, bounded by ctx.
func (k *Keeper) Stop(ctx context.Context) error {
	var err error
	k.stopOnce.Do(func() {
		k.stopFollowing()
		k.cancel()
		<-k.done
		err = k.unregister(ctx)
	})
	return err
}

// Close ends the loop without unregistering.
func (k *Keeper) Close() {
	k.stopOnce.Do(func() {
		k.stopFollowing()
		k.cancel()
		<-k.done
	})
}
