package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sync"
	"syscall"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
)

// printer formats notifications; it is safe for the listener's concurrent
// handlers.
type printer struct {
	mu      sync.Mutex
	out     io.Writer
	printed chan string // optional: each event_type printed
}

func (p *printer) handle(_ context.Context, n goslo.Notification) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	user, _ := n.Context.Get("user")
	_, err := fmt.Fprintf(p.out, "%-5s %s from %s (user %v): %s\n", n.Priority, n.EventType, n.PublisherID, user, envelope.Repr(n.Payload))
	if p.printed != nil {
		p.printed <- n.EventType
	}
	return err
}

// listener builds a listener on topic for the info, warn and error
// priorities, keeping the event types that match event.
func listener(tr *goslo.Transport, topic string, event *regexp.Regexp, p *printer) *goslo.NotificationListener {
	return goslo.NewNotificationListener(tr, []string{topic}, &goslo.NotificationEndpoint{
		EventType: event,
		Handlers:  map[string]goslo.NotificationHandler{"info": p.handle, "warn": p.handle, "error": p.handle},
	})
}

func main() {
	url := flag.String("url", "", "transport URL (default: oslo's, the Redis matchmaker on 127.0.0.1:6379)")
	topic := flag.String("topic", "notifications", "notification topic")
	event := flag.String("event", ".*", "regular expression the event_type must match")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	re, err := regexp.Compile(*event)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifications:", err)
		os.Exit(2)
	}
	tr, err := goslo.NewTransport(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifications:", err)
		os.Exit(1)
	}
	defer tr.Close()
	l := listener(tr, *topic, re, &printer{out: os.Stdout})
	if err := l.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "notifications:", err)
		os.Exit(1)
	}
	defer l.Stop(context.Background())
	<-ctx.Done()
}
