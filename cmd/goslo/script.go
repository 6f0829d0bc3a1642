package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
)

// script is a parsed --script file of goslo serve: the endpoint's target
// and, for each method, either a built-in or its cases in order.
type script struct {
	file      string
	namespace string
	version   string
	names     []string // methods, in file order
	methods   map[string]*scriptMethod
}

// scriptMethod is one scripted method: a built-in (echo, context, fail,
// sleep, whoami) or cases, the first matching of which answers.
type scriptMethod struct {
	builtin goslo.Handler
	cases   []scriptCase
}

// scriptCase is one answer: when match (a subset of the call's keyword
// arguments) holds, wait delay, then return result or raise err.
type scriptCase struct {
	line   int
	match  *goslo.Map // nil: every call
	delay  time.Duration
	result any
	err    *goslo.RemoteError
}

// scriptError is a refused script: the file, the line and the reason.
type scriptError struct {
	file   string
	line   int
	reason string
}

func (e *scriptError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.reason)
	}
	return e.file + ": " + e.reason
}

// builtinHandlers are the methods of goslo serve without a script, which a
// script names with the value "builtin".
func builtinHandlers(server string) map[string]goslo.Handler {
	b := builtin{name: server}
	return map[string]goslo.Handler{"echo": b.Echo, "context": b.Context, "fail": b.Fail, "sleep": b.Sleep, "whoami": b.Whoami}
}

// loadScript reads and checks a script file (YAML, or JSON, which YAML
// reads too).
func loadScript(file, server string) (*script, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseScript(file, data, server)
}

func parseScript(file string, data []byte, server string) (*script, error) {
	fail := func(n *yaml.Node, format string, a ...any) error {
		line := 0
		if n != nil {
			line = n.Line
		}
		return &scriptError{file: file, line: line, reason: fmt.Sprintf(format, a...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 says "yaml: line N: reason".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if i := strings.Index(rest, ": "); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil {
					return nil, &scriptError{file: file, line: n, reason: rest[i+2:]}
				}
			}
		}
		return nil, &scriptError{file: file, reason: msg}
	}
	if len(doc.Content) == 0 {
		return nil, &scriptError{file: file, reason: "empty script"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root, "the script must be a mapping with methods (and optionally namespace, version)")
	}
	s := &script{file: file, version: "1.0", methods: map[string]*scriptMethod{}}
	var methods *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "namespace", "version":
			if v.Kind != yaml.ScalarNode {
				return nil, fail(v, "%s must be a string or null", k.Value)
			}
			val := v.Value
			if v.Tag == "!!null" {
				val = ""
			}
			if k.Value == "namespace" {
				s.namespace = val
			} else if val != "" {
				s.version = val
			}
		case "methods":
			methods = v
		default:
			return nil, fail(k, "unknown key %q (namespace, version, methods)", k.Value)
		}
	}
	if methods == nil || methods.Kind != yaml.MappingNode {
		return nil, fail(root, "methods: a mapping of method names is required")
	}
	builtins := builtinHandlers(server)
	for i := 0; i+1 < len(methods.Content); i += 2 {
		k, v := methods.Content[i], methods.Content[i+1]
		name := k.Value
		if name == "" || strings.HasPrefix(name, "_") {
			return nil, fail(k, "method %q: a method name must not be empty or start with _", name)
		}
		if _, dup := s.methods[name]; dup {
			return nil, fail(k, "method %q is given twice", name)
		}
		m := &scriptMethod{}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Value != "builtin" || v.Tag != "!!str" {
				return nil, fail(v, "method %q: a scalar value must be \"builtin\"", name)
			}
			h, ok := builtins[name]
			if !ok {
				return nil, fail(v, "method %q: no such built-in (echo, context, fail, sleep, whoami)", name)
			}
			m.builtin = h
		case yaml.MappingNode:
			c, err := parseCase(fail, name, v)
			if err != nil {
				return nil, err
			}
			m.cases = []scriptCase{c}
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return nil, fail(v, "method %q: no case", name)
			}
			for _, cn := range v.Content {
				if cn.Kind != yaml.MappingNode {
					return nil, fail(cn, "method %q: a case must be a mapping (match, result, error, delay)", name)
				}
				c, err := parseCase(fail, name, cn)
				if err != nil {
					return nil, err
				}
				m.cases = append(m.cases, c)
			}
		default:
			return nil, fail(v, "method %q: \"builtin\", a case or a list of cases", name)
		}
		s.methods[name] = m
		s.names = append(s.names, name)
	}
	if len(s.names) == 0 {
		return nil, fail(methods, "methods: no method")
	}
	return s, nil
}

func parseCase(fail func(*yaml.Node, string, ...any) error, name string, n *yaml.Node) (scriptCase, error) {
	c := scriptCase{line: n.Line}
	hasResult := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "match":
			if v.Kind != yaml.MappingNode {
				return c, fail(v, "method %q: match must be a mapping of argument names to values", name)
			}
			mv, err := nodeValue(fail, v)
			if err != nil {
				return c, err
			}
			c.match = mv.(*goslo.Map)
		case "result":
			r, err := nodeValue(fail, v)
			if err != nil {
				return c, err
			}
			c.result, hasResult = r, true
		case "delay":
			d, err := parseDelay(v)
			if err != nil {
				return c, fail(v, "method %q: delay: %v", name, err)
			}
			c.delay = d
		case "error":
			e, err := parseError(fail, name, v)
			if err != nil {
				return c, err
			}
			c.err = e
		default:
			return c, fail(k, "method %q: unknown key %q (match, result, error, delay)", name, k.Value)
		}
	}
	if hasResult && c.err != nil {
		return c, fail(n, "method %q: a case has a result or an error, not both", name)
	}
	return c, nil
}

// parseDelay reads "2.5s" (a Go duration) or a number of seconds.
func parseDelay(v *yaml.Node) (time.Duration, error) {
	if v.Kind != yaml.ScalarNode {
		return 0, errors.New("a duration (2.5s, 300ms) or a number of seconds")
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(v.Value, 64); err == nil && v.Tag != "!!str" {
		if f < 0 || f > maxSeconds {
			return 0, errors.New("out of range (0 to 1e9 seconds)")
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		var err error
		if d, err = time.ParseDuration(v.Value); err != nil {
			return 0, errors.New("a duration (2.5s, 300ms) or a number of seconds")
		}
		if d < 0 {
			return 0, errors.New("negative")
		}
	}
	return d, nil
}

func parseError(fail func(*yaml.Node, string, ...any) error, name string, v *yaml.Node) (*goslo.RemoteError, error) {
	if v.Kind != yaml.MappingNode {
		return nil, fail(v, "method %q: error must be a mapping (class, module, message, kwargs)", name)
	}
	module, class, message := envelope.ModuleBuiltins, "", ""
	var kwargs *goslo.Map
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "class", "module", "message":
			if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
				return nil, fail(val, "method %q: error %s must be a string", name, k.Value)
			}
			switch k.Value {
			case "class":
				class = val.Value
			case "module":
				module = val.Value
			default:
				message = val.Value
			}
		case "kwargs":
			if val.Kind != yaml.MappingNode {
				return nil, fail(val, "method %q: error kwargs must be a mapping", name)
			}
			kv, err := nodeValue(fail, val)
			if err != nil {
				return nil, err
			}
			kwargs = kv.(*goslo.Map)
		default:
			return nil, fail(k, "method %q: unknown error key %q (class, module, message, kwargs)", name, k.Value)
		}
	}
	if class == "" || module == "" {
		return nil, fail(v, "method %q: error needs a class (and a module, builtins by default)", name)
	}
	e := goslo.NewRemoteError(module, class, message)
	e.Kwargs = kwargs
	return e, nil
}

// nodeValue converts a YAML node to the values goslo carries: *goslo.Map
// (in file order), []any, string, int64, float64, bool, nil.
func nodeValue(fail func(*yaml.Node, string, ...any) error, n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return nodeValue(fail, n.Alias)
	case yaml.MappingNode:
		m := goslo.NewMap()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fail(k, "a mapping key must be a string")
			}
			if _, dup := m.Get(k.Value); dup {
				return nil, fail(k, "key %q is given twice", k.Value)
			}
			v, err := nodeValue(fail, n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m.Set(k.Value, v)
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(fail, c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fail(n, "%v", err)
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fail(n, "integer %s: %v", n.Value, err)
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fail(n, "number %s: %v", n.Value, err)
			}
			return f, nil
		case "!!str":
			return n.Value, nil
		}
		return nil, fail(n, "unsupported value of tag %s", n.Tag)
	}
	return nil, fail(n, "unsupported YAML node")
}

// matches reports whether every argument the case names has the given
// value in args.
func (c *scriptCase) matches(args *goslo.Map) bool {
	if c.match == nil {
		return true
	}
	for _, kv := range c.match.Items() {
		v, ok := args.Get(kv.Key)
		if !ok || !envelope.Equal(kv.Value, v) {
			return false
		}
	}
	return true
}

// answer runs method of the script s.
func (s *script) answer(ctx context.Context, method string, rctx, args *goslo.Map) (any, error) {
	m, ok := s.methods[method]
	if !ok {
		// Removed by a reload: as a real endpoint without the method.
		return nil, envelope.NoSuchMethodError(method)
	}
	if m.builtin != nil {
		return m.builtin(ctx, rctx, args)
	}
	for i := range m.cases {
		c := &m.cases[i]
		if !c.matches(args) {
			continue
		}
		if c.delay > 0 {
			t := time.NewTimer(c.delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		if c.err != nil {
			return nil, c.err
		}
		return c.result, nil
	}
	return nil, goslo.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError",
		fmt.Sprintf("goslo script %s: no case of %s matches the arguments", s.file, method))
}

// sameShape reports whether a and b make the same endpoint (namespace,
// version, method names): a reload between them needs no new server.
func (s *script) sameShape(o *script) bool {
	if s.namespace != o.namespace || s.version != o.version || len(s.methods) != len(o.methods) {
		return false
	}
	for n := range s.methods {
		if _, ok := o.methods[n]; !ok {
			return false
		}
	}
	return true
}
