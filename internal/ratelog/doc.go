// Package ratelog limits repeated log lines: an slog.Handler wrapper that
// lets a few records of one kind from one source through per window and
// counts the rest, then reports how many it suppressed.
//
// A kind is the record's level and message; its source is the value of
// the first attributes naming a peer or a target ("addr", "target", "key",
// "to", "host", "peer", "proxy", "routing_key", "sender", "remote"), so a
// flood from one peer does not hide the first lines about another. Records
// below the handler's level (Warn by default) are never limited.
package ratelog
