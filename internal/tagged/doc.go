// Package tagged converts goslo model values to and from the tagged JSON
// form that carries them across the Go/Python test channel
// (testdata/python/tagged.py).
package tagged
