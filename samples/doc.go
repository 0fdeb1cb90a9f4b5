// Package samples holds flowwatch's sample footage and the RTSP camera
// simulator that feeds it in as if it came from real cameras.
//
// The built-in samples (see Builtin) live in MediaDir: the real pedestrian
// clip vtest, transcoded to H.264 by PrepareVtest during setup, and the
// synthetic crowds made by samples/synth, each with its ground truth.
//
// Prepare turns any video file ffmpeg can read into an H.264 Annex-B
// elementary stream with a small JSON sidecar (frame rate, size, frame
// count); the Simulator serves such streams over RTSP as live cameras,
// paced in real time and looping without resetting RTP timestamps or
// sequence numbers. ResolveVideos and Serve are what `flowwatch simulate`
// runs.
//
// Preparation runs the ffmpeg and ffprobe programs; serving needs neither.
// samples imports nothing else of flowwatch.
package samples
