package samples

import (
	"os"
	"path/filepath"
)

// defaultMediaDir is the media folder compiled into the binary by the
// Makefile (-ldflags "-X flowwatch/samples.defaultMediaDir=/abs/samples/media"),
// so that an installed binary finds the samples from any working directory.
var defaultMediaDir string

// MediaEnv is the environment variable that, when set, names the folder
// holding the sample media instead of the built-in default.
const MediaEnv = "FLOWWATCH_SAMPLES"

// VtestSource is where Debian's opencv-doc package installs the real
// pedestrian clip that the built-in sample vtest is made from.
const VtestSource = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// MediaDir returns the folder holding the sample media: $FLOWWATCH_SAMPLES
// when set, else the folder compiled in at build time, else "samples/media"
// relative to the working directory. `make setup` fills it.
func MediaDir() string {
	if dir := os.Getenv(MediaEnv); dir != "" {
		return dir
	}
	if defaultMediaDir != "" {
		return defaultMediaDir
	}
	return filepath.Join("samples", "media")
}

// Sample describes one built-in sample video.
type Sample struct {
	// Name is the sample's name; the simulator serves it at
	// rtsp://HOST:PORT/<Name>.
	Name string
	// File is the video's file name inside MediaDir.
	File string
	// Source is the original footage setup prepares File from; empty when
	// the video is generated.
	Source string
	// FrameRate is the video's frame rate.
	FrameRate FrameRate
	// Width and Height are the picture size in pixels.
	Width, Height int
	// Truth is the file name inside MediaDir of the ground-truth counts;
	// empty when the sample has none there.
	Truth string
	// Description says what the video shows.
	Description string
}

// Path returns the sample video's path inside MediaDir.
func (s Sample) Path() string {
	return filepath.Join(MediaDir(), s.File)
}

// TruthPath returns the ground-truth file's path inside MediaDir, or "" when
// the sample has none.
func (s Sample) TruthPath() string {
	if s.Truth == "" {
		return ""
	}
	return filepath.Join(MediaDir(), s.Truth)
}

// Builtin returns the built-in samples, in the order the simulator lists
// them. Each call returns a fresh slice.
func Builtin() []Sample {
	return []Sample{
		{
			Name:      "vtest",
			File:      "vtest.h264",
			Source:    VtestSource,
			FrameRate: FrameRate{Num: 10, Den: 1},
			Width:     768,
			Height:    576,
			Description: "real footage: pedestrians crossing a campus plaza, seen from above, " +
				"3 to 9 people at a time (OpenCV's vtest.avi, 795 frames, 79.5 s)",
		},
		{
			Name:        "synth-sparse",
			File:        "synth-sparse.mp4",
			FrameRate:   FrameRate{Num: 15, Den: 1},
			Width:       1280,
			Height:      720,
			Truth:       "synth-sparse.truth.csv",
			Description: "synthetic museum hall from samples/synth (preset sparse): 8 to 18 people in view, exact per-frame counts, 600 frames, 40 s",
		},
		{
			Name:        "synth-dense",
			File:        "synth-dense.mp4",
			FrameRate:   FrameRate{Num: 15, Den: 1},
			Width:       1280,
			Height:      720,
			Truth:       "synth-dense.truth.csv",
			Description: "synthetic plaza from samples/synth (preset dense): 160 to 220 people in view, exact per-frame counts, 600 frames, 40 s",
		},
	}
}

// LookupBuiltin returns the built-in sample with the given name.
func LookupBuiltin(name string) (Sample, bool) {
	for _, s := range Builtin() {
		if s.Name == name {
			return s, true
		}
	}
	return Sample{}, false
}
