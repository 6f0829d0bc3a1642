package interop

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
)

// The Go spelling of the dict rpc_peer.py's Endpoint.instance returns.
type instanceBase struct {
	UUID string `json:"uuid"`
}

type flavor struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	DiskGB int    `json:"disk_gb"`
}

type instance struct {
	instanceBase
	Name      string            `json:"name"`
	VCPUs     int               `json:"vcpus"`
	RAM       uint32            `json:"ram_mb"`
	Host      *string           `json:"host"`
	CreatedAt time.Time         `json:"created_at"`
	Tags      []string          `json:"tags"`
	Metadata  map[string]string `json:"metadata"`
	Flavor    *flavor           `json:"flavor"`
	Zone      string            `json:"zone"`
	Count     int               `json:"count,string"`
	Deleted   bool              `json:"deleted"`
	Note      string            `json:"note,omitempty"`
	UpdatedAt time.Time         `json:"updated_at,omitzero"`
	Secret    string            `json:"-"`
}

func pyInstance() instance {
	return instance{
		instanceBase: instanceBase{UUID: "a0e1"}, Name: "vm-1", VCPUs: 4, RAM: 2048,
		CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		Tags:      []string{"a", "b"}, Metadata: map[string]string{"k": "v"},
		Flavor: &flavor{ID: 7, Name: "m1.small", DiskGB: 20}, Zone: "nova", Count: 3,
	}
}

// TestStructsBothWaysWithPython: a goslo server's Go struct result reaches
// a real 8.1.4 caller as exactly the bytes a Python endpoint returning the
// same dict sends, in both codecs; and that caller's keyword arguments
// decode into a Go handler's struct.
func TestStructsBothWaysWithPython(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.Name(), func(t *testing.T) { structsBothWays(t, c) })
	}
}

func structsBothWays(t *testing.T, codec envelope.Codec) {
	ctx := context.Background()
	r := redistest.Start(t)
	url := pyTransportURL(r.Addr, codec.Name())
	tr, err := goslo.NewTransport(ctx, url, goslo.WithOptions(func(c *compat.Config) { c.ZMQ.RPCZMQHost = "127.0.0.1" }))
	require.NoError(t, err)
	defer tr.Close()

	got := make(chan instance, 1)
	ep := goslo.NewEndpoint("", "1.3")
	goslo.Handle(ep, "instance", func(context.Context, *goslo.Map) (instance, error) {
		in := pyInstance()
		in.Secret = "never sent"
		return in, nil
	})
	goslo.Handle(ep, "take_instance", func(_ context.Context, in instance) (string, error) {
		got <- in
		return in.Name, nil
	})
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "gostructs", Server: "gosrv"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	StartProc(t, EnvZMQ814, "rpc_peer.py", "server", url, "pystructs", "pysrv")
	py := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", url)

	type result struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Raw    []string        `json:"raw"`
		Error  any             `json:"error"`
	}
	call := func(topic, server, method string, args any) result {
		t.Helper()
		// retries: the 8.1.4 client's reply-tracking race (docs/interop.md).
		req := map[string]any{"op": "call", "topic": topic, "server": server, "method": method,
			"raw": true, "timeout": 10, "retries": 2}
		if args != nil {
			req["args"] = args
		}
		py.Send(req)
		var res result
		py.NextJSON(60*time.Second, &res)
		require.True(t, res.OK, "%s.%s: %v", topic, method, res.Error)
		require.NotEmpty(t, res.Raw)
		return res
	}

	fromPy := call("pystructs", "pysrv", "instance", nil)
	fromGo := call("gostructs", "gosrv", "instance", nil)
	require.Equal(t, fromPy.Raw[len(fromPy.Raw)-1], fromGo.Raw[len(fromGo.Raw)-1],
		"the Go struct's reply payload differs from the Python dict's")
	require.JSONEq(t, string(fromPy.Result), string(fromGo.Result))

	// Python kwargs -> a Go struct: the keyword arguments a Python caller
	// sends for the same instance (a datetime included) fill the fields.
	b, err := envelope.AppendMsgpack(nil, pyInstance())
	require.NoError(t, err)
	v, err := envelope.DecodeMsgpack(b)
	require.NoError(t, err)
	kw := v.(*envelope.Map)
	kw.Set("unknown_kwarg", "ignored")
	tagged, err := ToTagged(kw)
	require.NoError(t, err)
	res := call("gostructs", "gosrv", "take_instance", tagged)
	require.JSONEq(t, `"vm-1"`, string(res.Result))
	in := <-got
	want := pyInstance()
	require.True(t, want.CreatedAt.Equal(in.CreatedAt), "%v", in.CreatedAt)
	in.CreatedAt = want.CreatedAt
	require.Equal(t, want, in)

	// A kwarg that does not fit: the Python caller gets a TypeError
	// naming it.
	bad, err := ToTagged(envelope.NewMap("flavor", envelope.NewMap("disk_gb", "big")))
	require.NoError(t, err)
	py.Send(map[string]any{"op": "call", "topic": "gostructs", "server": "gosrv", "method": "take_instance", "args": bad, "timeout": 10, "retries": 2})
	var fail struct {
		OK    bool `json:"ok"`
		Error struct {
			Class   string `json:"class"`
			Message string `json:"message"`
		} `json:"error"`
	}
	py.NextJSON(60*time.Second, &fail)
	require.False(t, fail.OK)
	require.Equal(t, "TypeError", fail.Error.Class)
	require.Contains(t, fail.Error.Message, "take_instance(): argument flavor.disk_gb: got a string, want Go int")
}

// What oslo.serialization writes for rpc_peer.py's instance dict
// (jsonutils.dump_as_bytes in .tox/zmq814; envelope's struct tests pin the
// same bytes).
const pyInstanceJSON = `{"uuid": "a0e1", "name": "vm-1", "vcpus": 4, "ram_mb": 2048, "host": null, "created_at": "2024-05-06T07:08:09.123456", "tags": ["a", "b"], "metadata": {"k": "v"}, "flavor": {"id": 7, "name": "m1.small", "disk_gb": 20}, "zone": "nova", "count": "3", "deleted": false}`

// TestRabbitStructsBothWaysWithPython: the same on RabbitMQ with an
// 18.3.1 caller: the Go struct result is, once decoded by Python, the dict
// Python's own JSON above decodes to; the caller's kwargs (a datetime
// among them) fill a Go handler's struct.
func TestRabbitStructsBothWaysWithPython(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-go-py")
	ctx := context.Background()
	tr := goRabbit(t, url, nil)
	got := make(chan instance, 1)
	ep := goslo.NewEndpoint("", "1.0")
	goslo.Handle(ep, "instance", func(context.Context, *goslo.Map) (instance, error) { return pyInstance(), nil })
	goslo.Handle(ep, "take_instance", func(_ context.Context, in instance) (string, error) {
		got <- in
		return in.Name, nil
	})
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "gostructs", Server: "g1"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	cli := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})

	rep := cli.Do("call", map[string]any{"topic": "gostructs", "method": "instance", "timeout": 10})
	require.NoError(t, rep.Err())
	want, err := envelope.DecodeJSON([]byte(pyInstanceJSON))
	require.NoError(t, err)
	wantTagged, err := ToTagged(want)
	require.NoError(t, err)
	wantJSON, err := json.Marshal(wantTagged)
	require.NoError(t, err)
	require.JSONEq(t, string(wantJSON), string(rep.Result))

	b, err := envelope.AppendMsgpack(nil, pyInstance())
	require.NoError(t, err)
	v, err := envelope.DecodeMsgpack(b) // the model values, the datetime a datetime
	require.NoError(t, err)
	kw, err := ToTagged(v)
	require.NoError(t, err)
	rep = cli.Do("call", map[string]any{"topic": "gostructs", "method": "take_instance", "args": kw, "timeout": 10})
	require.NoError(t, rep.Err())
	require.JSONEq(t, `"vm-1"`, string(rep.Result))
	in := <-got
	wantIn := pyInstance()
	require.True(t, wantIn.CreatedAt.Equal(in.CreatedAt), "%v", in.CreatedAt)
	in.CreatedAt = wantIn.CreatedAt
	require.Equal(t, wantIn, in)
}
