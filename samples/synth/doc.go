// Package synth makes flowwatch's synthetic crowd videos: an elevated
// surveillance camera looking down at a plaza or a museum hall, with people
// walking, lingering at exhibits and moving in groups, and the exact position
// of every visible head in every frame.
//
// The videos serve three purposes: testers feed them in as sample cameras
// (flowwatch simulate), per-zone counts are checked against their ground truth
// (mean absolute error), and their frames with head points are training data
// for crowd-density models. People are therefore drawn as figures, not dots:
// legs that swing, arms, clothing from a varied palette, skin and hair, a soft
// shadow on the ground, and a size that follows from perspective.
//
// # Scene
//
// A pinhole camera (see Camera) hangs HeightM metres above a flat ground and
// is pitched TiltDeg below the horizontal. World coordinates are metres: x to
// the camera's right, y up from the ground, z forward along the ground from
// the point below the camera. The ground, a back wall (a building facade or a
// hall wall with doorways) and static objects (benches, planters, trees,
// lamp posts, columns, display cases) are ray-cast once per video into a
// background and a per-pixel occluder map; people are painted over it from
// far to near and are hidden where a static object stands in front of them.
//
// # Coordinates and the truth rule
//
// Image coordinates are continuous pixel coordinates: (0,0) is the top-left
// corner of the top-left pixel, x grows to the right and y down, and the pixel
// in column i and row j covers [i,i+1)×[j,j+1), so its centre is at
// (i+0.5, j+0.5). A person's head point is the projected centre of the head.
//
// The truth of a frame holds every person whose head point lies inside the
// image, 0 ≤ x < width and 0 ≤ y < height, whether or not the head is hidden
// behind another person or a static object and whether or not the feet are
// inside the frame. A person whose head point is outside is not in the truth
// even if part of the body shows. HeightPx is the distance in pixels between
// the projections of the person's foot point on the ground and the top of
// the head, so it tells the person's scale even when the body is cut off.
//
// Frame numbers count from 0 and match the index of the decoded frame of the
// encoded video.
//
// # Files
//
// Generate writes an H.264 MP4 (by piping raw frames to ffmpeg), a truth CSV
// with the header frame,person,head_x,head_y,height_px and one row per person
// in the truth of each frame, and a JSON sidecar (see Sidecar and
// SidecarPath) that records the preset, seed, size, frame rate, frame count
// and camera model. LoadTruth reads the CSV back, with the sidecar when it is
// there.
//
// Everything is deterministic given the Config: the same seed gives the same
// frames and the same truth.
//
// synth imports only the standard library; Generate runs the ffmpeg program.
package synth
