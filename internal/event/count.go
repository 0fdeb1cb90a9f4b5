package event

import "time"

// CountSample is the number of people in one zone of one camera, counted
// from one analysed frame.
type CountSample struct {
	// Time is when the frame was captured (wall clock of the box).
	Time time.Time `json:"time"`
	// Camera and Zone name the zone.
	Camera string `json:"camera"`
	Zone   string `json:"zone"`
	// Count is the estimated number of people in the zone.
	Count float64 `json:"count"`
}

// Target names what a count or an alert is about: "zone:<camera>/<zone>",
// "area:<area>" or "camera:<camera>".
type Target string

// ZoneTarget returns the target of one camera's zone.
func ZoneTarget(camera, zone string) Target { return Target("zone:" + camera + "/" + zone) }

// AreaTarget returns the target of an area.
func AreaTarget(area string) Target { return Target("area:" + area) }

// CameraTarget returns the target of a camera's health.
func CameraTarget(camera string) Target { return Target("camera:" + camera) }

// CountPoint is a target's count at one time in the stored history: a
// one-second value, or a one-minute rollup with its minimum, maximum and
// mean.
type CountPoint struct {
	// Target is the zone or area.
	Target Target `json:"target"`
	// Time is the start of the second or minute.
	Time time.Time `json:"time"`
	// Count is the value: the last count in the second, or the mean over
	// the minute.
	Count float64 `json:"count"`
	// Min and Max bound the counts seen in the period.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Samples is how many counts went into the point.
	Samples int `json:"samples"`
}
