package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// Stored snapshots. A camera's live picture (GET
// /api/v1/cameras/{name}/snapshot) is served from memory and never
// stored; a picture is stored only when an admin asks for it, blurred
// unless the admin says otherwise, and it goes after its retention
// (store.ClassSnapshots) or when an admin deletes it. Storing and deleting
// are audited ("snapshot.store", "snapshot.delete").
//
// Blurring protects the people in the picture and keeps the scene: where
// the camera's live density grid (LiveDensity) counts people, the cells
// (widened by one cell all round, so that a person on a cell border is
// covered) get a strong Gaussian blur, of a sigma of a thirtieth of the
// picture's width and at least 8 pixels, which leaves no face or
// licence plate readable; the rest of the picture gets a light one (a
// four-hundredth of the width, at least 1.5 pixels), for the people the
// grid missed. Without a live grid the whole picture gets the strong blur:
// when in doubt, nobody is recognisable.

// Blur settings of stored snapshots.
const (
	// peopleCellThreshold is the live density (people per cell) above
	// which a cell counts as having people in it.
	peopleCellThreshold = 0.05
	// strongBlurMin and strongBlurPerWidth give the strong blur's sigma:
	// the width divided by strongBlurPerWidth, at least strongBlurMin
	// pixels.
	strongBlurMin      = 8.0
	strongBlurPerWidth = 30.0
	// lightBlurMin and lightBlurPerWidth give the light blur's sigma.
	lightBlurMin      = 1.5
	lightBlurPerWidth = 400.0
	// maxSnapshotList bounds the snapshots one list answers.
	maxSnapshotList = 500
)

// snapshotStoreReaders may list and see stored snapshots.
var snapshotStoreReaders = []string{RoleAdmin, RoleOperator, RolePlanner}

// snapshotsAPI serves the stored snapshots: POST and GET
// /api/v1/cameras/{name}/snapshots, GET and DELETE /api/v1/snapshots/{id}.
type snapshotsAPI struct {
	auth    *Auth
	db      *store.Store
	site    *config.Config
	live    Snapshots   // the cameras' current pictures; nil answers 503
	density LiveDensity // where people are; nil blurs whole pictures strongly
	log     *slog.Logger
	now     func() time.Time
}

// registerSnapshotsAPI adds the stored-snapshot routes to mux when cfg has
// an Auth, a Store and a Site.
func registerSnapshotsAPI(mux *http.ServeMux, cfg Config, log *slog.Logger) {
	if cfg.Auth == nil || cfg.Store == nil || cfg.Site == nil {
		return
	}
	a := &snapshotsAPI{auth: cfg.Auth, db: cfg.Store, site: cfg.Site, live: cfg.Snapshots, density: cfg.LiveDensity,
		log: log, now: time.Now}
	admin := []string{RoleAdmin}
	mux.Handle("POST /api/v1/cameras/{name}/snapshots", a.auth.Require(admin, http.HandlerFunc(a.save)))
	mux.Handle("GET /api/v1/cameras/{name}/snapshots", a.auth.Require(snapshotStoreReaders, http.HandlerFunc(a.list)))
	mux.Handle("GET /api/v1/snapshots/{id}", a.auth.Require(snapshotStoreReaders, http.HandlerFunc(a.get)))
	mux.Handle("DELETE /api/v1/snapshots/{id}", a.auth.Require(admin, http.HandlerFunc(a.delete)))
}

// storeRequest is the body of POST /api/v1/cameras/{name}/snapshots. An
// empty body, or one without blur, means blurred.
type storeRequest struct {
	Blur *bool `json:"blur"`
}

// save serves POST /api/v1/cameras/{name}/snapshots: the camera's current
// picture, blurred unless {"blur": false}, stored as a JPEG; 201 with the
// snapshot's description.
func (a *snapshotsAPI) save(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, a.site)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return
	}
	var req storeRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, `bad request body: %v; want {"blur": true} or {"blur": false}`, err)
			return
		}
	}
	blur := req.Blur == nil || *req.Blur
	if a.live == nil {
		writeError(w, http.StatusServiceUnavailable, "camera %q: pictures are not available on this server", cc.Name)
		return
	}
	f, err := a.live.Snapshot(cc.Name)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "camera %q: no picture to store: %v", cc.Name, err)
		return
	}
	img, err := frameImage(f)
	if err != nil {
		a.log.Error("snapshot not converted", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: picture not converted; see the server log", cc.Name)
		return
	}
	how := "not blurred"
	if blur {
		var grid *vision.HeatmapGrid
		if a.density != nil {
			if g, err := a.density.LiveHeatmap(cc.Name); err == nil {
				grid = &g
			}
		}
		var cells int
		img, cells = blurPicture(img, grid)
		switch {
		case grid == nil:
			how = "blurred strongly all over (no live density)"
		default:
			how = fmt.Sprintf("blurred: strongly over %d of %d cells with people, lightly elsewhere", cells, grid.Cols*grid.Rows)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: snapshotQuality}); err != nil {
		a.log.Error("snapshot not encoded", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: snapshot not encoded; see the server log", cc.Name)
		return
	}
	p := principal(r)
	sn, err := a.db.SaveSnapshot(r.Context(), store.Snapshot{Camera: cc.Name, At: a.now(), By: p.User, Blurred: blur,
		Width: img.Bounds().Dx(), Height: img.Bounds().Dy()}, buf.Bytes())
	if err != nil {
		a.log.Error("snapshot not stored", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: snapshot not stored; see the server log", cc.Name)
		return
	}
	a.auth.Audit(r, p, "snapshot.store", "camera "+cc.Name,
		fmt.Sprintf("snapshot %d, %dx%d, %s", sn.ID, sn.Width, sn.Height, how))
	writeJSON(w, http.StatusCreated, sn)
}

// list serves GET /api/v1/cameras/{name}/snapshots: the camera's stored
// snapshots, newest first, at most maxSnapshotList.
func (a *snapshotsAPI) list(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, a.site)
	if !ok {
		return
	}
	list, err := a.db.Snapshots(r.Context(), cc.Name, maxSnapshotList)
	if err != nil {
		a.log.Error("snapshots unreadable", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: snapshots unreadable; see the server log", cc.Name)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": list})
}

// pathSnapshotID reads the {id} path value, answering 400 itself when it
// is not a positive number.
func pathSnapshotID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "snapshot id must be a positive number, got %q", r.PathValue("id"))
		return 0, false
	}
	return id, true
}

// get serves GET /api/v1/snapshots/{id}: the stored JPEG.
func (a *snapshotsAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathSnapshotID(w, r)
	if !ok {
		return
	}
	_, pic, err := a.db.SnapshotJPEG(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no snapshot %d", id)
		return
	case err != nil:
		a.log.Error("snapshot unreadable", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "snapshot %d unreadable; see the server log", id)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(pic)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pic)
}

// delete serves DELETE /api/v1/snapshots/{id}: the snapshot goes; 200
// with what it was.
func (a *snapshotsAPI) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathSnapshotID(w, r)
	if !ok {
		return
	}
	sn, err := a.db.DeleteSnapshot(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no snapshot %d", id)
		return
	case err != nil:
		a.log.Error("snapshot not deleted", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "snapshot %d not deleted; see the server log", id)
		return
	}
	a.auth.Audit(r, principal(r), "snapshot.delete", "camera "+sn.Camera,
		fmt.Sprintf("snapshot %d of %s", sn.ID, sn.At.Format(time.RFC3339)))
	writeJSON(w, http.StatusOK, map[string]any{"deleted": sn})
}

// storedBackgrounds gives heatmaps their background: each camera's latest
// stored snapshot. The live picture is never used: the analysis keeps no
// pictures for history, and a heatmap of a past period is not to show who
// stands there now.
type storedBackgrounds struct{ db *store.Store }

// Snapshot implements Snapshots with SnapshotContext.
func (b storedBackgrounds) Snapshot(camera string) (*ingest.Frame, error) {
	return b.SnapshotContext(context.Background(), camera)
}

// SnapshotContext returns the camera's latest stored snapshot as a BGR
// frame; it fails when the camera has none.
func (b storedBackgrounds) SnapshotContext(ctx context.Context, camera string) (*ingest.Frame, error) {
	if b.db == nil {
		return nil, errors.New("no store")
	}
	sn, pic, err := b.db.LatestSnapshot(ctx, camera)
	if err != nil {
		return nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(pic))
	if err != nil {
		return nil, fmt.Errorf("snapshot %d of camera %q: %w", sn.ID, camera, err)
	}
	return imageFrame(img), nil
}

// imageFrame copies img into a BGR frame.
func imageFrame(img image.Image) *ingest.Frame {
	bd := img.Bounds()
	f := &ingest.Frame{Width: bd.Dx(), Height: bd.Dy(), Stride: 3 * bd.Dx()}
	f.Pix = make([]byte, f.Stride*f.Height)
	for y := range f.Height {
		for x := range f.Width {
			r, g, b, _ := img.At(bd.Min.X+x, bd.Min.Y+y).RGBA()
			px := f.Pix[y*f.Stride+3*x:]
			px[0], px[1], px[2] = byte(b>>8), byte(g>>8), byte(r>>8)
		}
	}
	return f
}

// blurPicture returns img blurred for storing (see the top of this file):
// strongly where grid has people and lightly elsewhere, or strongly all
// over when grid is nil; and how many grid cells got the strong blur.
// img is not changed.
func blurPicture(img *image.RGBA, grid *vision.HeatmapGrid) (*image.RGBA, int) {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	strong := gaussianBlur(img, max(strongBlurMin, float64(w)/strongBlurPerWidth))
	if grid == nil || grid.Cols <= 0 || grid.Rows <= 0 || len(grid.Data) != grid.Cols*grid.Rows {
		return strong, 0
	}
	out := gaussianBlur(img, max(lightBlurMin, float64(w)/lightBlurPerWidth))
	cols, rows := grid.Cols, grid.Rows
	// cells with people, widened by one cell all round
	mask := make([]bool, cols*rows)
	cells := 0
	for r := range rows {
		for c := range cols {
			if grid.Data[r*cols+c] <= peopleCellThreshold {
				continue
			}
			for dr := -1; dr <= 1; dr++ {
				for dc := -1; dc <= 1; dc++ {
					if rr, cc := r+dr, c+dc; rr >= 0 && rr < rows && cc >= 0 && cc < cols && !mask[rr*cols+cc] {
						mask[rr*cols+cc] = true
						cells++
					}
				}
			}
		}
	}
	if cells == 0 {
		return out, 0
	}
	for y := range h {
		r := min(y*rows/h, rows-1)
		for x := range w {
			if mask[r*cols+min(x*cols/w, cols-1)] {
				i := y*out.Stride + 4*x
				copy(out.Pix[i:i+4], strong.Pix[y*strong.Stride+4*x:])
			}
		}
	}
	return out, cells
}

// gaussianBlur returns src blurred with a Gaussian of about sigma pixels,
// made of three box blurs each way (edges repeat the border pixels).
// Alpha is left as it is.
func gaussianBlur(src *image.RGBA, sigma float64) *image.RGBA {
	// three boxes of width d have the variance 3(d²-1)/12 = sigma²
	d := math.Sqrt(4*sigma*sigma + 1)
	radius := max(1, int(math.Round((d-1)/2)))
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	a := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		copy(a.Pix[y*a.Stride:y*a.Stride+4*w], src.Pix[y*src.Stride:])
	}
	b := image.NewRGBA(a.Rect)
	copy(b.Pix, a.Pix)
	for range 3 {
		boxBlur(a.Pix, b.Pix, w, h, 4, 4*w, radius) // along rows, a to b
		boxBlur(b.Pix, a.Pix, h, w, 4*w, 4, radius) // along columns, b to a
	}
	return a
}

// boxBlur averages, in each of lines lines of n pixels, every pixel's
// colour channels over the 2·radius+1 pixels around it, from src into
// dst. Pixel i of line l is at l·lineStep + i·step; a window past either
// end repeats the end pixel.
func boxBlur(src, dst []byte, n, lines, step, lineStep, radius int) {
	width := 2*radius + 1
	clamp := func(i int) int { return min(max(i, 0), n-1) }
	for l := range lines {
		base := l * lineStep
		for ch := range 3 {
			at := func(i int) int { return int(src[base+clamp(i)*step+ch]) }
			sum := 0
			for i := -radius; i <= radius; i++ {
				sum += at(i)
			}
			for i := range n {
				dst[base+i*step+ch] = byte((sum + width/2) / width)
				sum += at(i+radius+1) - at(i-radius)
			}
		}
	}
}
