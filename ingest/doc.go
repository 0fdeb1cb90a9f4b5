// Package ingest brings camera video into flowwatch: RTSP sources with
// reconnect and a stall watchdog, file sources, the bounded fan-out of access
// units to subscribers (analysis, live view), and the libavcodec decoder that
// turns access units into frames for the vision stage.
//
// ingest knows nothing of vision, alerting or the console; it imports only
// flowwatch/internal/* besides its libraries.
package ingest
