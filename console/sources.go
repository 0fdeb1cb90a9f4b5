package console

import (
	"flowwatch/ingest"
	"flowwatch/vision"
)

// Snapshots gives each camera's latest analysed picture: the background of
// heatmaps, the zone editor's canvas and the wall's poster frames.
type Snapshots interface {
	// Snapshot returns a copy of the camera's most recent decoded frame;
	// the caller owns it and releases nothing. It fails when the camera is
	// unknown or has given no picture yet.
	Snapshot(camera string) (*ingest.Frame, error)
}

// LiveDensity gives each camera's recent crowd density: the heat layer of
// the live wall.
type LiveDensity interface {
	// LiveHeatmap returns the camera's decaying live heatmap. It fails
	// when the camera is unknown or nothing has been counted yet.
	LiveHeatmap(camera string) (vision.HeatmapGrid, error)
}
