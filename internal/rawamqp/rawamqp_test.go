package rawamqp

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/internal/rabbittest"
)

func TestAMQPURL(t *testing.T) {
	for in, want := range map[string]string{
		"rabbit://guest:guest@127.0.0.1:5701/":         "amqp://guest:guest@127.0.0.1:5701/",
		"rabbit://guest:guest@127.0.0.1:5701/nova?x=1": "amqp://guest:guest@127.0.0.1:5701/nova",
		"kombu://u:p@h:1/%2Fnova":                      "amqp://u:p@h:1/%2Fnova",
		"rabbit://":                                    "amqp://localhost:5672",
	} {
		got, err := AMQPURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := AMQPURL("zmq://127.0.0.1")
	assert.Error(t, err)
	assert.True(t, IsRabbitURL("rabbit://h/"))
	assert.False(t, IsRabbitURL("zmq+redis://h/"))
}

func TestBodies(t *testing.T) {
	req := requestBody("echo", EscapedArgs("xx"), "m1", "reply_q1", "u1")
	// The request is an oslo 2.0 envelope whose inner string decodes.
	var env map[string]string
	require.NoError(t, json.Unmarshal(req, &env))
	assert.Equal(t, "2.0", env["oslo.version"])
	var inner map[string]any
	require.NoError(t, json.Unmarshal([]byte(env["oslo.message"]), &inner))
	assert.Equal(t, map[string]any{"method": "echo", "args": map[string]any{"data": "xx"}, "_msg_id": "m1",
		"_reply_q": "reply_q1", "_timeout": nil, "_unique_id": "u1", "_context_user": "bench"}, inner)
	assert.Equal(t, "m1", string(field(req, keyMsgID)))
	assert.Equal(t, "reply_q1", string(field(req, keyReplyQ)))

	cast := requestBody("echo", EscapedArgs("xx"), "", "", "u2")
	require.NoError(t, json.Unmarshal(cast, &env))
	assert.Nil(t, field(cast, keyMsgID))

	rep := replyBody([]byte(EscapedArgs("xx")), []byte("m1"), "u3")
	env, inner = nil, nil
	require.NoError(t, json.Unmarshal(rep, &env))
	require.NoError(t, json.Unmarshal([]byte(env["oslo.message"]), &inner))
	assert.Equal(t, map[string]any{"result": map[string]any{"data": "xx"}, "failure": nil, "ending": true,
		"_msg_id": "m1", "_unique_id": "u3"}, inner)
	assert.Equal(t, "m1", string(field(rep, keyMsgID)))

	g := newIDGen()
	a, b := g.next(), g.next()
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, b)
}

// TestEcho runs calls and casts (with and without confirms) from
// concurrent callers through a private broker and checks the topology
// the reference declares.
func TestEcho(t *testing.T) {
	node := rabbittest.Start(t)
	url := node.URL("")
	// The node's own goroutines stay until the test's cleanup.
	before := goleak.IgnoreCurrent()
	srv, err := StartServer(ServerOptions{URL: url, Topic: "bench", Server: "s1", ReplyChannels: 2})
	require.NoError(t, err)
	defer srv.Close()
	cl, err := Dial(ClientOptions{URL: url, Topic: "bench", Server: "s1", Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer cl.Close()

	const callers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, callers*each*3)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k, err := cl.Caller(true)
			if err != nil {
				errs <- err
				return
			}
			defer k.Close()
			nc, err := cl.Caller(false)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			for j := 0; j < each; j++ {
				data := fmt.Sprintf("c%dn%d", i, j)
				b, err := k.Call("echo", EscapedArgs(data))
				if err != nil {
					errs <- err
					continue
				}
				if !strings.Contains(string(b), `{\"result\": {\"data\": \"`+data+`\"}`) {
					errs <- fmt.Errorf("reply %s to %s", b, data)
				}
				if err := k.Cast("echo", EscapedArgs(data)); err != nil {
					errs <- err
				}
				if err := nc.Cast("echo", EscapedArgs(data)); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := int64(callers * each * 3)
	require.Eventually(t, func() bool {
		n, err := cl.ServerReceived()
		return err == nil && n == want
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, want, srv.Received())
	// Every echo call and at least one stats call got a confirmed reply.
	assert.Eventually(t, func() bool { replied, _, _ := srv.Stats(); return replied > callers*each }, 5*time.Second, time.Millisecond)
	_, returned, failed := srv.Stats()
	assert.Zero(t, returned)
	assert.Zero(t, failed)

	queues := map[string]rabbittest.Row{}
	for _, q := range node.ListQueues("") {
		queues[q["name"].(string)] = q
	}
	require.Contains(t, queues, "bench.s1")
	assert.Equal(t, false, queues["bench.s1"]["durable"])
	assert.Equal(t, false, queues["bench.s1"]["auto_delete"])
	require.Contains(t, queues, cl.ReplyQueue)
	assert.Regexp(t, `^reply_[0-9a-f]{32}$`, cl.ReplyQueue)
	assert.Equal(t, false, queues[cl.ReplyQueue]["exclusive"])
	assert.Contains(t, fmt.Sprint(queues[cl.ReplyQueue]["arguments"]), "1800000")
	var bound bool
	for _, b := range node.ListBindings("") {
		if b["source_name"] == Exchange && b["destination_name"] == "bench.s1" && b["routing_key"] == "bench.s1" {
			bound = true
		}
	}
	assert.True(t, bound, "bench.s1 bound to openstack with bench.s1")
	for _, e := range node.ListExchanges("") {
		if e["name"] == Exchange {
			assert.Equal(t, "topic", e["type"])
			assert.Equal(t, false, e["durable"])
		}
	}

	// Closing leaves no goroutine of the client's or the server's behind.
	cl.Close()
	srv.Close()
	goleak.VerifyNone(t, before)
}

// TestAMQPURLErrorsHideThePassword: url.Parse's error quotes the whole
// URL; AMQPURL's errors name it with the password redacted.
func TestAMQPURLErrorsHideThePassword(t *testing.T) {
	for _, raw := range []string{"rabbit://guest:S3cretPW@h:notaport/", "zmq://guest:S3cretPW@h/", "rabbit://guest:S3cretPW@h/%zz"} {
		_, err := AMQPURL(raw)
		if err == nil {
			t.Fatalf("%s: no error", raw)
		}
		if strings.Contains(err.Error(), "S3cretPW") {
			t.Fatalf("%s: %v", raw, err)
		}
	}
}
