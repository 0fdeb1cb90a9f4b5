package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/samples/synth"
	"flowwatch/vision"
)

// analyzeOptions are the flags of `flowwatch analyze`.
type analyzeOptions struct {
	input     string
	model     string
	backend   string
	threads   int
	batch     int
	zonesFile string
	every     int
	frames    int64
	out       string
	heatmap   string
	truth     string
	// classic estimator calibration
	pixelsPerPerson float64
	horizon         float64
}

func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("analyze", stderr)
	var o analyzeOptions
	fs.StringVar(&o.model, "model", config.DefaultModel, "model `name` under models/, a model folder, or \"classic\"")
	fs.StringVar(&o.backend, "backend", vision.BackendONNXRuntime, "inference `backend`: onnxruntime or opencv")
	fs.IntVar(&o.threads, "threads", 0, "inference `threads` (0: the backend's default)")
	fs.IntVar(&o.batch, "batch", 1, "frames per inference `batch`")
	fs.StringVar(&o.zonesFile, "zones", "", "YAML `file` with zones: [{name, polygon}] in normalized coordinates")
	fs.IntVar(&o.every, "every", 1, "analyse every `N`th decoded frame")
	fs.Int64Var(&o.frames, "frames", 0, "stop after `N` decoded frames (0: all)")
	fs.StringVar(&o.out, "out", "", "counts CSV `file` (frame,pts_ms,zone,count); required")
	fs.StringVar(&o.heatmap, "heatmap", "", "write a heatmap PNG of the run to `file`")
	fs.StringVar(&o.truth, "truth", "", "ground-truth `file` (frame,person,head_x,head_y,…) to compare with; default: INPUT's .truth.csv when present")
	fs.Float64Var(&o.pixelsPerPerson, "pixels-per-person", 0, "classic estimator: foreground `pixels` one person covers at mid-height")
	fs.Float64Var(&o.horizon, "horizon", 0, "classic estimator: normalized `row` of the horizon (negative: above the picture)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return fmt.Errorf("analyze: want one INPUT (a video file or rtsp:// URL), got %d", len(pos))
	case o.out == "":
		return fmt.Errorf("analyze: --out counts.csv is required")
	case o.every < 1:
		return fmt.Errorf("analyze: --every must be 1 or more, got %d", o.every)
	case o.frames < 0:
		return fmt.Errorf("analyze: --frames must be 0 or more, got %d", o.frames)
	case o.batch < 1 || o.batch > 64:
		return fmt.Errorf("analyze: --batch must be between 1 and 64, got %d", o.batch)
	}
	o.input = pos[0]
	return analyze(ctx, o, stdout, stderr)
}

// maxDecodeErrorsInARow ends a run whose source yields only errors.
const maxDecodeErrorsInARow = 100

// inputName names an input for a heatmap or a log: a file's base name, or
// the last part of a URL's path (its host when it has none), never its
// credentials.
func inputName(input string) string {
	if !strings.Contains(input, "://") {
		return filepath.Base(input)
	}
	// parse the redacted form: a password holding an unescaped '/' would
	// otherwise spill into the path (rtsp://u:8554/pw@host)
	u, err := url.Parse(ingest.RedactURL(input))
	if err != nil {
		return "stream"
	}
	if base := path.Base(u.Path); base != "" && base != "/" && base != "." {
		return base
	}
	return u.Hostname()
}

// analysisRun holds one analyze run's state.
type analysisRun struct {
	o        analyzeOptions
	name     string // the input, fit to show: passwords removed
	est      vision.Estimator
	task     vision.Task
	zones    *vision.ZoneSet
	zoneList []vision.Zone
	csv      *bufio.Writer
	truth    *synth.Truth
	errs     map[string]*zoneError
	heat     []float64
	heatCols int
	heatRows int
	heatN    int64
	snapshot *ingest.Frame
	analysed int64
}

// zoneError accumulates the comparison of counts with ground truth.
type zoneError struct {
	frames   int
	absErr   float64
	truthSum float64
}

func analyze(ctx context.Context, o analyzeOptions, stdout, stderr io.Writer) error {
	zones, err := loadZones(o.zonesFile)
	if err != nil {
		return err
	}
	zs, err := vision.NewZoneSet(zones)
	if err != nil {
		return fmt.Errorf("analyze: zones %s: %w", o.zonesFile, err)
	}
	src, err := ingest.OpenFile(ctx, o.input, ingest.FileConfig{})
	if err != nil {
		return err
	}
	defer src.Close()
	info := src.Info()

	est, err := openEstimator(o, info)
	if err != nil {
		return err
	}
	defer est.Close()

	r := &analysisRun{o: o, name: ingest.RedactURL(o.input), est: est, task: est.Info().Task,
		zones: zs, zoneList: zones, errs: map[string]*zoneError{}}
	if err := r.loadTruth(); err != nil {
		return err
	}

	f, err := os.Create(o.out)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	defer f.Close()
	r.csv = bufio.NewWriter(f)
	// Counts written before a failure or an interrupt are kept.
	defer r.csv.Flush()
	fmt.Fprintln(r.csv, "frame,pts_ms,zone,count")

	total := info.Frames
	if o.frames > 0 && (total <= 0 || o.frames < total) {
		total = o.frames
	}
	bar := newProgress(stderr, "frames", total)
	var batch []*ingest.Frame
	release := func() {
		for _, fr := range batch {
			fr.Release()
		}
		batch = batch[:0]
	}
	defer release()
	var decoded, decodeErrors, inARow int64
	for o.frames == 0 || decoded < o.frames {
		fr, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A damaged packet costs its picture, not the run; a source
			// that yields nothing but errors ends it.
			if ctx.Err() != nil || inARow >= maxDecodeErrorsInARow {
				return fmt.Errorf("analyze %s: after frame %d: %w", r.name, decoded, err)
			}
			decodeErrors++
			inARow++
			fmt.Fprintf(stderr, "analyze %s: after frame %d: %v (skipped)\n", r.name, decoded, err)
			continue
		}
		inARow = 0
		decoded++
		if fr.Index%int64(o.every) != 0 {
			fr.Release()
			bar.update(decoded)
			continue
		}
		batch = append(batch, fr)
		if len(batch) == o.batch {
			if err := r.estimate(ctx, batch); err != nil {
				return err
			}
			release()
		}
		bar.update(decoded)
	}
	if len(batch) > 0 {
		if err := r.estimate(ctx, batch); err != nil {
			return err
		}
		release()
	}
	bar.finish(decoded)
	if err := r.csv.Flush(); err != nil {
		return fmt.Errorf("analyze: write %s: %w", o.out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("analyze: write %s: %w", o.out, err)
	}
	ei := est.Info()
	fmt.Fprintf(stdout, "analysed %d of %d decoded frames of %s with %s (%s); counts in %s\n",
		r.analysed, decoded, r.name, estimatorName(ei), ei.Backend, o.out)
	if decodeErrors > 0 {
		fmt.Fprintf(stdout, "%d damaged packets were skipped\n", decodeErrors)
	}
	if o.heatmap != "" {
		if err := r.writeHeatmap(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "heatmap in %s\n", o.heatmap)
	}
	if r.truth != nil {
		r.printErrors(stdout)
	}
	return nil
}

func estimatorName(ei vision.EstimatorInfo) string {
	if ei.Model != "" {
		return "model " + ei.Model
	}
	return "the classic estimator"
}

// openEstimator opens the model named by --model, or the classic estimator.
func openEstimator(o analyzeOptions, info ingest.FileInfo) (vision.Estimator, error) {
	if o.model == vision.ModelClassic {
		if o.pixelsPerPerson <= 0 {
			return nil, fmt.Errorf("analyze: the classic estimator needs --pixels-per-person (foreground pixels one person covers at mid-height)")
		}
		return vision.NewClassicEstimator(vision.ClassicConfig{
			Camera:          inputName(o.input),
			PixelsPerPerson: o.pixelsPerPerson,
			HorizonRow:      o.horizon,
		})
	}
	return vision.OpenModel(vision.OpenConfig{
		Model:  o.model,
		Runner: vision.RunnerConfig{Backend: o.backend, Threads: o.threads},
	})
}

// zonesFile is the YAML a --zones file holds.
type zonesFile struct {
	Zones []config.Zone `yaml:"zones"`
}

func loadZones(path string) ([]vision.Zone, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("analyze: zones: %w", err)
	}
	var zf zonesFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&zf); err != nil {
		return nil, fmt.Errorf("analyze: zones %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(zf.Zones) == 0 {
		return nil, fmt.Errorf("analyze: zones %s: no zones (want zones: [{name: …, polygon: [[x, y], …]}])", path)
	}
	out := make([]vision.Zone, len(zf.Zones))
	for i, z := range zf.Zones {
		out[i] = vision.Zone{Name: z.Name, Polygon: z.Polygon}
	}
	return out, nil
}

// loadTruth opens --truth, or the truth file beside the input when there
// is one (synth-dense.mp4 → synth-dense.truth.csv).
func (r *analysisRun) loadTruth() error {
	truthPath := r.o.truth
	if truthPath == "" && !strings.Contains(r.o.input, "://") {
		guess := strings.TrimSuffix(r.o.input, filepath.Ext(r.o.input)) + ".truth.csv"
		if _, err := os.Stat(guess); err == nil {
			truthPath = guess
		}
	}
	if truthPath == "" {
		return nil
	}
	t, err := synth.LoadTruth(truthPath)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	r.truth = t
	return nil
}

// estimate runs one batch and records its counts, heatmap mass and errors.
func (r *analysisRun) estimate(ctx context.Context, frames []*ingest.Frame) error {
	res, err := r.est.Estimate(ctx, frames)
	if err != nil {
		return fmt.Errorf("analyze %s: frames %d–%d: %w", r.name, frames[0].Index, frames[len(frames)-1].Index, err)
	}
	for i, e := range res {
		fr := frames[i]
		counts := r.zones.CountEstimate(e, r.task, fr.Width, fr.Height)
		names := make([]string, 0, len(counts))
		for name := range counts {
			if name != "all" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		names = append([]string{"all"}, names...)
		for _, name := range names {
			fmt.Fprintf(r.csv, "%d,%d,%s,%s\n", fr.Index, fr.PTS.Milliseconds(), name, strconv.FormatFloat(counts[name], 'f', 3, 64))
		}
		r.compare(fr, counts)
		if e.Density != nil && r.o.heatmap != "" {
			if err := r.addHeat(e.Density, fr); err != nil {
				return err
			}
		}
		r.analysed++
	}
	return nil
}

// compare adds one frame's counts to the comparison with ground truth.
func (r *analysisRun) compare(fr *ingest.Frame, counts map[string]float64) {
	if r.truth == nil || int(fr.Index) >= r.truth.Frames() {
		return
	}
	for name, got := range counts {
		var want float64
		if name == "all" {
			want = float64(len(r.truth.Heads(int(fr.Index))))
		} else {
			for _, z := range r.zoneList {
				if z.Name == name {
					want = float64(r.truth.CountIn(int(fr.Index), z.Polygon, fr.Width, fr.Height))
				}
			}
		}
		ze := r.errs[name]
		if ze == nil {
			ze = &zoneError{}
			r.errs[name] = ze
		}
		ze.frames++
		ze.absErr += math.Abs(got - want)
		ze.truthSum += want
	}
}

func (r *analysisRun) printErrors(w io.Writer) {
	names := make([]string, 0, len(r.errs))
	for n := range r.errs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "against ground truth (%s):\n", r.truthName())
	fmt.Fprintf(w, "%-16s %7s %9s %11s %9s\n", "zone", "frames", "MAE", "mean truth", "rel. err")
	for _, n := range names {
		ze := r.errs[n]
		mae := ze.absErr / float64(ze.frames)
		mean := ze.truthSum / float64(ze.frames)
		rel := "-"
		if ze.truthSum > 0 {
			rel = fmt.Sprintf("%.1f%%", 100*ze.absErr/ze.truthSum)
		}
		fmt.Fprintf(w, "%-16s %7d %9.3f %11.2f %9s\n", n, ze.frames, mae, mean, rel)
	}
}

func (r *analysisRun) truthName() string {
	if r.o.truth != "" {
		return r.o.truth
	}
	return strings.TrimSuffix(r.o.input, filepath.Ext(r.o.input)) + ".truth.csv"
}

// heatCols is the heatmap grid's width in cells; rows follow the frame's
// aspect.
const heatCols = 64

func (r *analysisRun) addHeat(m *vision.DensityMap, fr *ingest.Frame) error {
	if r.heat == nil {
		r.heatCols = heatCols
		r.heatRows = max(1, int(math.Round(float64(heatCols)*float64(fr.Height)/float64(fr.Width))))
		r.heat = make([]float64, r.heatCols*r.heatRows)
	}
	cells, err := vision.ResampleMass(m, fr.Width, fr.Height, r.heatCols, r.heatRows)
	if err != nil {
		return fmt.Errorf("analyze: heatmap: %w", err)
	}
	for i, v := range cells {
		r.heat[i] += float64(v)
	}
	r.heatN++
	if r.snapshot == nil {
		r.snapshot = cloneFrame(fr)
	}
	return nil
}

func cloneFrame(f *ingest.Frame) *ingest.Frame {
	c := *f
	c.Pix = append([]byte(nil), f.Pix...)
	return &ingest.Frame{Width: c.Width, Height: c.Height, Stride: c.Stride, Pix: c.Pix, PTS: c.PTS, Index: c.Index, Key: c.Key}
}

func (r *analysisRun) writeHeatmap() error {
	if r.heatN == 0 {
		return fmt.Errorf("analyze: heatmap: no frame was analysed with a density map")
	}
	g := vision.HeatmapGrid{
		Camera: inputName(r.o.input),
		Cols:   r.heatCols,
		Rows:   r.heatRows,
		Frames: r.heatN,
		Data:   make([]float32, len(r.heat)),
		To:     time.Now().UTC(),
	}
	g.From = g.To
	for i, v := range r.heat {
		g.Data[i] = float32(v / float64(r.heatN))
		g.Max = max(g.Max, g.Data[i])
	}
	png, err := vision.RenderHeatmapPNG(g, r.snapshot, vision.HeatmapRenderOptions{})
	if err != nil {
		return fmt.Errorf("analyze: heatmap: %w", err)
	}
	if err := os.WriteFile(r.o.heatmap, png, 0o644); err != nil {
		return fmt.Errorf("analyze: heatmap: %w", err)
	}
	return nil
}
