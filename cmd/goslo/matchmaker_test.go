package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
)

// TestURLPicksMatchmaker pins what README.md, docs/ and the demo say: the
// demo's zmq+dummy:// is the in-process matchmaker, and a plain zmq://
// follows rpc_zmq_matchmaker, which defaults to redis as in oslo.
func TestURLPicksMatchmaker(t *testing.T) {
	require.Equal(t, "redis", compat.DefaultConfig("h").ZMQ.RPCZMQMatchmaker, "oslo's rpc_zmq_matchmaker default")
	r := redistest.Start(t)
	loopback := func(c *compat.Config) {
		c.ZMQ.RPCZMQHost = "127.0.0.1"
		c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	}
	for _, tc := range []struct {
		url, option, want string
	}{
		{"zmq+dummy://", "", "*matchmaker.Dummy"}, // make demo
		{"zmq://" + r.Addr, "", "*matchmaker.Redis"},
		{"zmq+redis://" + r.Addr, "", "*matchmaker.Redis"},
		{"zmq://" + r.Addr, "dummy", "*matchmaker.Dummy"},
		{"zmq+dummy://", "redis", "*matchmaker.Dummy"}, // the URL's backend wins
	} {
		t.Run(fmt.Sprintf("%s,%s", tc.url, tc.option), func(t *testing.T) {
			tr, err := goslo.NewTransport(context.Background(), tc.url, goslo.WithOptions(func(c *compat.Config) {
				loopback(c)
				if tc.option != "" {
					c.ZMQ.RPCZMQMatchmaker = tc.option
				}
			}))
			require.NoError(t, err)
			defer tr.Close()
			require.Equal(t, tc.want, fmt.Sprintf("%T", tr.Matchmaker()))
		})
	}
}
