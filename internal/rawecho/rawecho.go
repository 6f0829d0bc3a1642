package rawecho

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/internal/zmqwire"
)

// Server is a ROUTER that answers every CALL with a REPLY of the same
// payload and counts CASTs.
type Server struct {
	Addr     string
	received atomic.Int64
	ctx      *zmq.Context
	done     chan struct{}
}

// Start binds on a free loopback port.
func Start() (*Server, error) {
	ctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	s, err := ctx.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, err
	}
	_ = s.SetLinger(0)
	_ = s.SetRcvhwm(0)
	_ = s.SetSndhwm(0)
	if err := s.Bind(zmqwire.TCPAddress("127.0.0.1:*")); err != nil {
		return nil, err
	}
	ep, _ := s.GetLastEndpoint()
	srv := &Server{Addr: ep, ctx: ctx, done: make(chan struct{})}
	go func() {
		defer close(srv.done)
		defer s.Close()
		for {
			msg, err := s.RecvMessageBytes(0)
			if err != nil {
				return // context terminated
			}
			srv.received.Add(1)
			if len(msg) == 6 && string(msg[3]) == "1" {
				_, _ = s.SendMessage(msg[0], "", "1.0", "5", msg[4], msg[5])
			}
		}
	}()
	return srv, nil
}

// Received counts the requests the server got.
func (s *Server) Received() int64 { return s.received.Load() }

// Close stops the server.
func (s *Server) Close() {
	_ = s.ctx.Term()
	<-s.done
}

// Client is one DEALER; use one per goroutine.
type Client struct {
	ctx *zmq.Context
	s   *zmq.Socket
	n   int
}

// Dial connects a DEALER to addr.
func Dial(addr string) (*Client, error) {
	ctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	s, err := ctx.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	_ = s.SetLinger(0)
	_ = s.SetSndhwm(0)
	if err := s.Connect(addr); err != nil {
		return nil, err
	}
	return &Client{ctx: ctx, s: s}, nil
}

// Call sends a CALL and waits for its reply.
func (c *Client) Call(payload []byte) error {
	c.n++
	id := fmt.Sprintf("%036d", c.n)
	if _, err := c.s.SendMessage("", "1.0", "1", id, payload); err != nil {
		return err
	}
	_ = c.s.SetRcvtimeo(10 * time.Second)
	msg, err := c.s.RecvMessageBytes(0)
	if err != nil {
		return err
	}
	if len(msg) != 5 || string(msg[3]) != id {
		return fmt.Errorf("rawecho: bad reply %q", msg)
	}
	return nil
}

// Send sends a CALL without waiting, for pipelining; it returns the
// sequence number that Recv reports for its reply.
func (c *Client) Send(payload []byte) (int, error) {
	c.n++
	if _, err := c.s.SendMessage("", "1.0", "1", fmt.Sprintf("%036d", c.n), payload); err != nil {
		return 0, err
	}
	return c.n, nil
}

// Recv waits for the next reply and returns the sequence number of its call.
func (c *Client) Recv() (int, error) {
	_ = c.s.SetRcvtimeo(10 * time.Second)
	msg, err := c.s.RecvMessageBytes(0)
	if err != nil {
		return 0, err
	}
	if len(msg) != 5 || len(msg[3]) != 36 {
		return 0, fmt.Errorf("rawecho: bad reply %q", msg)
	}
	n, err := strconv.Atoi(string(msg[3]))
	if err != nil {
		return 0, fmt.Errorf("rawecho: bad reply id %q", msg[3])
	}
	return n, nil
}

// Cast sends a CAST.
func (c *Client) Cast(payload []byte) error {
	c.n++
	_, err := c.s.SendMessage("", "1.0", "2", fmt.Sprintf("%036d", c.n), payload)
	return err
}

// Close closes the DEALER.
func (c *Client) Close() {
	_ = c.s.Close()
	_ = c.ctx.Term()
}
