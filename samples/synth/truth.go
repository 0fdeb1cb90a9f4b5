package synth

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// truthHeader is the header line of a truth CSV.
const truthHeader = "frame,person,head_x,head_y,height_px"

// maxTruthFrame bounds the frame numbers LoadTruth accepts (about 77 hours
// at 15 fps), so that a corrupt file cannot ask for an absurd frame count.
const maxTruthFrame = 1 << 22

// Truth is the ground truth of one synthetic video: the head points of the
// people in each frame (see the package documentation for who is in it).
type Truth struct {
	frames map[int][]Head
	n      int
	meta   *Sidecar
}

// Sidecar is the JSON file written beside a synthetic video's truth (see
// SidecarPath): what the video is and how it was made, for a model card.
type Sidecar struct {
	// Generator names the package that made the video.
	Generator string `json:"generator"`
	// Preset is the preset the video's Config started from, or "".
	Preset string `json:"preset"`
	// Scene is the kind of scene: "plaza" or "hall".
	Scene string `json:"scene"`
	// Seed is the seed everything random came from.
	Seed uint64 `json:"seed"`
	// Width and Height are the frame size in pixels.
	Width int `json:"width"`
	// Height is the frame height in pixels.
	Height int `json:"height"`
	// FPS is the frame rate.
	FPS float64 `json:"fps"`
	// Frames is the number of frames, numbered from 0.
	Frames int `json:"frames"`
	// MinVisible and MaxVisible bound the number of people in the truth of
	// every frame.
	MinVisible int `json:"min_visible"`
	// MaxVisible is the upper bound on the people in the truth of a frame.
	MaxVisible int `json:"max_visible"`
	// Camera is the camera model.
	Camera Camera `json:"camera"`
	// Video and Truth are the base names of the video and truth files.
	Video string `json:"video"`
	// Truth is the base name of the truth CSV.
	Truth string `json:"truth"`
	// TruthRule says who is in the truth.
	TruthRule string `json:"truth_rule"`
	// Coordinates says how head points are measured.
	Coordinates string `json:"coordinates"`
}

// The texts Generate writes into every sidecar.
const (
	sidecarTruthRule   = "every person whose head point (centre of the head) lies inside the image, 0 <= x < width and 0 <= y < height, occluded or not; height_px is the image distance between the projected foot point and top of the head"
	sidecarCoordinates = "pixels of the video frame, origin at the top-left corner of the top-left pixel, x right, y down; pixel (i,j) has its centre at (i+0.5, j+0.5); frame numbers count decoded frames from 0"
)

// SidecarPath returns the path of the JSON sidecar that belongs to a truth
// CSV: the truth path with ".csv" replaced by ".json" (or ".json" appended
// when it does not end in ".csv").
func SidecarPath(truthPath string) string {
	return strings.TrimSuffix(truthPath, ".csv") + ".json"
}

// LoadTruth reads a truth CSV written by Generate, and its sidecar when one
// is there (see SidecarPath), which then fixes the frame count.
func LoadTruth(path string) (*Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("synth: load truth: %w", err)
	}
	defer f.Close()
	t, err := parseTruth(f, path)
	if err != nil {
		return nil, err
	}
	sp := SidecarPath(path)
	b, err := os.ReadFile(sp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("synth: load truth %s: sidecar: %w", path, err)
	}
	var meta Sidecar
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("synth: load truth %s: sidecar %s: %w", path, sp, err)
	}
	if meta.Frames < t.n || meta.Frames > maxTruthFrame {
		return nil, fmt.Errorf("synth: load truth %s: sidecar %s says %d frames, but the truth has rows for frame %d",
			path, sp, meta.Frames, t.n-1)
	}
	t.n = meta.Frames
	t.meta = &meta
	return t, nil
}

// parseTruth reads a truth CSV; name is used in errors.
func parseTruth(r io.Reader, name string) (*Truth, error) {
	cols := strings.Split(truthHeader, ",")
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = len(cols)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("synth: truth %s: header: %w", name, err)
	}
	if got := strings.Join(head, ","); got != truthHeader {
		return nil, fmt.Errorf("synth: truth %s: header is %q, want %q", name, got, truthHeader)
	}
	t := &Truth{frames: map[int][]Head{}}
	seen := map[[2]int]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("synth: truth %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		frame, err := strconv.Atoi(rec[0])
		if err != nil || frame < 0 || frame >= maxTruthFrame {
			return nil, fmt.Errorf("synth: truth %s line %d: frame %q is not a whole number from 0 to %d", name, line, rec[0], maxTruthFrame-1)
		}
		person, err := strconv.Atoi(rec[1])
		if err != nil || person < 0 {
			return nil, fmt.Errorf("synth: truth %s line %d: person %q is not a whole number from 0", name, line, rec[1])
		}
		var v [3]float64
		for k := range v {
			v[k], err = strconv.ParseFloat(rec[2+k], 64)
			if err != nil || math.IsNaN(v[k]) || math.IsInf(v[k], 0) {
				return nil, fmt.Errorf("synth: truth %s line %d: %s %q is not a finite number", name, line, cols[2+k], rec[2+k])
			}
		}
		key := [2]int{frame, person}
		if seen[key] {
			return nil, fmt.Errorf("synth: truth %s line %d: person %d appears twice in frame %d", name, line, person, frame)
		}
		seen[key] = true
		t.frames[frame] = append(t.frames[frame], Head{Person: person, X: v[0], Y: v[1], HeightPx: v[2]})
		t.n = max(t.n, frame+1)
	}
	return t, nil
}

// Frames returns the number of frames: from the sidecar when LoadTruth
// found one, otherwise one more than the last frame with a row.
func (t *Truth) Frames() int { return t.n }

// Heads returns a copy of the heads in the truth of a frame, in file order
// (by Person for files written by Generate); none for a frame outside
// 0..Frames()-1.
func (t *Truth) Heads(frame int) []Head {
	return slices.Clone(t.frames[frame])
}

// Sidecar returns the sidecar LoadTruth read, and whether there was one.
func (t *Truth) Sidecar() (Sidecar, bool) {
	if t.meta == nil {
		return Sidecar{}, false
	}
	return *t.meta, true
}

// CountIn counts the heads of a frame whose head point lies inside poly, a
// polygon in normalized image coordinates (x/width, y/height, 0..1) of a
// width×height video. The test is the even-odd crossing rule with half-open
// comparisons, so a zone partition counts every head exactly once: a head
// exactly on an edge belongs to the polygon on the edge's larger-x side (for
// a vertical edge) or larger-y side (for a horizontal edge), and a head on
// the polygon's own right or bottom edge is outside. A polygon with fewer
// than three points contains nothing.
func (t *Truth) CountIn(frame int, poly [][2]float64, width, height int) int {
	if len(poly) < 3 || width <= 0 || height <= 0 {
		return 0
	}
	n := 0
	for _, h := range t.frames[frame] {
		if pointInPolygon(h.X/float64(width), h.Y/float64(height), poly) {
			n++
		}
	}
	return n
}

// pointInPolygon is the even-odd crossing test with half-open comparisons
// (W. R. Franklin's PNPOLY).
func pointInPolygon(x, y float64, poly [][2]float64) bool {
	in := false
	j := len(poly) - 1
	for i := range poly {
		xi, yi := poly[i][0], poly[i][1]
		xj, yj := poly[j][0], poly[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
		j = i
	}
	return in
}

// truthWriter writes the rows of a truth CSV.
type truthWriter struct {
	w   *bufio.Writer
	buf []byte
}

// newTruthWriter starts a truth CSV on w with its header.
func newTruthWriter(w io.Writer) (*truthWriter, error) {
	tw := &truthWriter{w: bufio.NewWriterSize(w, 1<<16)}
	if _, err := tw.w.WriteString(truthHeader + "\n"); err != nil {
		return nil, err
	}
	return tw, nil
}

// frame writes the rows of one frame.
func (tw *truthWriter) frame(i int, heads []Head) error {
	for _, h := range heads {
		b := tw.buf[:0]
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(h.Person), 10)
		for _, v := range [3]float64{h.X, h.Y, h.HeightPx} {
			b = append(b, ',')
			b = strconv.AppendFloat(b, v, 'f', 3, 64)
		}
		b = append(b, '\n')
		tw.buf = b
		if _, err := tw.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// flush writes out what is buffered.
func (tw *truthWriter) flush() error { return tw.w.Flush() }

// writeSidecar writes the sidecar of a resolved Config to path.
func writeSidecar(path string, cfg Config, cam Camera, frames int, videoPath, truthPath string) error {
	meta := Sidecar{
		Generator: "flowwatch/samples/synth", Preset: cfg.Preset, Scene: cfg.Scene, Seed: cfg.Seed,
		Width: cfg.Width, Height: cfg.Height, FPS: cfg.FPS, Frames: frames,
		MinVisible: cfg.MinVisible, MaxVisible: cfg.MaxVisible, Camera: cam,
		Video: filepath.Base(videoPath), Truth: filepath.Base(truthPath),
		TruthRule: sidecarTruthRule, Coordinates: sidecarCoordinates,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(meta); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
