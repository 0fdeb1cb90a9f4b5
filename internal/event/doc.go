// Package event holds the plain values that cross flowwatch's stages: camera
// states, count samples, alerts. They carry no behaviour and import only the
// standard library, so they can also travel between boxes unchanged.
package event
