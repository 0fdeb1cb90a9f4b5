// Package console is flowwatch's HTTP face: health, Prometheus metrics, and
// (as the console grows) the REST API, websocket events, WHEP live video and
// the embedded browser app. It reads camera state through small interfaces
// and never reaches into the stages that produce it.
package console
