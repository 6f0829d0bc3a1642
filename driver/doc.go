// Package driver holds goslo's transport drivers under the public API.
//
// This first part is the wire of oslo.messaging's zmq driver, message
// version 1.0 (zmq-wire.md §3, §6, §11 in the repository's spec): the frame
// layouts of every hop (direct client and server, proxy client, server and
// routing rule, PUB/SUB), built by one function each and parsed with the
// checks the Python receivers apply. A message that fails them is a
// *FrameError: receivers log it with the message id and drop it, never
// answering the sender, as the reference does.
package driver
