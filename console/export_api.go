package console

import (
	"archive/zip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// ExportFormat names the layout of an export archive, in its manifest.
const ExportFormat = "flowwatch-export/1"

// The files of an export archive (besides the snapshots' pictures, under
// snapshots/).
const (
	exportManifest  = "manifest.json"
	exportCounts1s  = "counts_1s.csv"
	exportCounts1m  = "counts_1m.csv"
	exportAlerts    = "alerts.json"
	exportHeatmaps  = "heatmaps.json"
	exportAudit     = "audit.csv"
	exportZones     = "zones.json"
	exportSnapshots = "snapshots.csv"
)

// ExportOptions says what WriteExport writes.
type ExportOptions struct {
	// Store holds the data.
	Store *store.Store
	// Site, when set, adds the config's zones of cameras that have no
	// stored layout to zones.json.
	Site *config.Config
	// From and To bound the period: everything held from From on and
	// before To.
	From, To time.Time
	// Now is when the export is made; zero means time.Now().
	Now time.Time
	// By names who asked for it, for the manifest.
	By string
}

// ExportFile is one file of an export archive, as its manifest lists it.
type ExportFile struct {
	Name string `json:"name"`
	// Rows is how many records the file holds: CSV lines besides the
	// header, elements of a JSON array, 1 for a picture.
	Rows int64 `json:"rows"`
	// Bytes is the file's length, uncompressed.
	Bytes int64 `json:"bytes"`
	// Content says what it holds.
	Content string `json:"content"`
}

// ExportManifest is manifest.json: what an export archive holds, every
// file but itself.
type ExportManifest struct {
	Format string       `json:"format"`
	From   time.Time    `json:"from"`
	To     time.Time    `json:"to"`
	MadeAt time.Time    `json:"made_at"`
	MadeBy string       `json:"made_by"`
	Files  []ExportFile `json:"files"`
}

// exportHeatmapBucket is one element of heatmaps.json.
type exportHeatmapBucket struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	Cols   int       `json:"cols"`
	Rows   int       `json:"rows"`
	Frames int64     `json:"frames"`
	// Data holds Rows rows of Cols sums of people per cell over the
	// frames: Data[i]/Frames is the average in cell i.
	Data []float32 `json:"data"`
}

// exportAlert is one element of alerts.json.
type exportAlert struct {
	Alert   event.Alert         `json:"alert"`
	Changes []event.AlertChange `json:"changes"`
}

// exportLayout is one element of zones.json.
type exportLayout struct {
	// Source is "stored" (saved in the console) or "config" (the site
	// config's zones of a camera without a stored layout).
	Source string `json:"source"`
	store.ZoneLayout
}

// WriteExport writes to w a ZIP archive of everything opt.Store holds
// about the period [opt.From, opt.To): the one-second counts and the
// one-minute rollups (CSV), the alerts opened in it with their changes
// (JSON), the heatmap buckets (JSON), the audit entries (CSV), the zone
// layouts in force during it (JSON), the snapshots stored in it (JPEG
// files under snapshots/, listed in snapshots.csv), and manifest.json
// (ExportManifest), which it also returns. It streams: each class is read
// from the store as it is written, a row (a picture) at a time. On an
// error the archive is left unfinished.
func WriteExport(ctx context.Context, w io.Writer, opt ExportOptions) (ExportManifest, error) {
	if opt.Store == nil {
		return ExportManifest{}, errors.New("export: no store")
	}
	if !opt.To.After(opt.From) {
		return ExportManifest{}, fmt.Errorf("export: to (%s) must come after from (%s)",
			opt.To.UTC().Format(time.RFC3339), opt.From.UTC().Format(time.RFC3339))
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	from, to := opt.From.UTC(), opt.To.UTC()
	m := ExportManifest{Format: ExportFormat, From: from, To: to, MadeAt: opt.Now.UTC(), MadeBy: opt.By, Files: []ExportFile{}}
	x := &exporter{zw: zip.NewWriter(w), now: opt.Now, m: &m}
	db := opt.Store
	steps := []func() error{
		func() error {
			return x.csv(exportCounts1s, "one-second counts of every zone and area: time, target, the last count in the second, min, max, samples",
				[]string{"time", "target", "count", "min", "max", "samples"}, func(row func([]string) error) error {
					return db.ReplayCounts(ctx, from, to, func(p event.CountPoint) error { return row(countRow(p)) })
				})
		},
		func() error {
			return x.csv(exportCounts1m, "one-minute count rollups: time (the minute's start), target, the mean count, min, max, samples",
				[]string{"time", "target", "mean", "min", "max", "samples"}, func(row func([]string) error) error {
					return db.EachRollup(ctx, from, to, func(p event.CountPoint) error { return row(countRow(p)) })
				})
		},
		func() error {
			return x.jsonArray(exportAlerts, "the alerts opened in the period, each with its changes", func(elem func(any) error) error {
				return db.EachAlert(ctx, from, to, func(a event.Alert, chs []event.AlertChange) error {
					return elem(exportAlert{Alert: a, Changes: chs})
				})
			})
		},
		func() error {
			return x.jsonArray(exportHeatmaps, "heatmap buckets of every camera: sums of people per cell over the bucket's frames", func(elem func(any) error) error {
				return db.EachHeatmapBucket(ctx, from, to, func(b store.HeatmapBucket) error {
					return elem(exportHeatmapBucket{Camera: b.Camera, Start: b.Start.UTC(), Cols: b.Cols, Rows: b.Rows, Frames: b.Frames, Data: b.Data})
				})
			})
		},
		func() error {
			return x.csv(exportAudit, "audit entries made in the period, in chain order",
				[]string{"id", "at", "actor", "role", "action", "target", "detail", "remote", "prev_hash", "hash"}, func(row func([]string) error) error {
					return db.EachAuditEntry(ctx, from, to, func(e store.AuditEntry) error {
						return row([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), csvText(e.Actor), e.Role,
							csvText(e.Action), csvText(e.Target), csvText(e.Detail), csvText(e.Remote), e.PrevHash, e.Hash})
					})
				})
		},
		func() error {
			return x.jsonArray(exportZones, "zone layouts in force during the period: each camera's layout in force at its start and "+
				"every one saved in it (source stored), and the config's zones of cameras without a stored layout (source config)",
				func(elem func(any) error) error {
					stored := map[string]bool{}
					err := db.EachZoneLayout(ctx, from, to, func(l store.ZoneLayout) error {
						stored[l.Camera] = true
						return elem(exportLayout{Source: "stored", ZoneLayout: l})
					})
					if err != nil || opt.Site == nil {
						return err
					}
					for _, cc := range opt.Site.Cameras {
						if !stored[cc.Name] && len(cc.Zones) > 0 {
							if err := elem(exportLayout{Source: "config", ZoneLayout: configLayout(cc)}); err != nil {
								return err
							}
						}
					}
					return nil
				})
		},
		func() error { return x.snapshots(ctx, db, from, to) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return m, fmt.Errorf("export %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
	}
	err := x.file(exportManifest, "", true, func(cw *countingWriter) (int64, error) {
		enc := json.NewEncoder(cw)
		enc.SetIndent("", "  ")
		return 1, enc.Encode(m)
	})
	if err == nil {
		err = x.zw.Close()
	}
	if err != nil {
		return m, fmt.Errorf("export %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return m, nil
}

// countRow is a counts CSV line of p.
func countRow(p event.CountPoint) []string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{p.Time.UTC().Format(time.RFC3339), string(p.Target), num(p.Count), num(p.Min), num(p.Max), strconv.Itoa(p.Samples)}
}

// exporter writes the files of one export archive and lists them in m.
type exporter struct {
	zw  *zip.Writer
	now time.Time
	m   *ExportManifest
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// file adds the file name to the archive (compressed when deflate), has
// write fill it and return its rows, and lists it in the manifest (the
// manifest itself excepted).
func (x *exporter) file(name, content string, deflate bool, write func(*countingWriter) (int64, error)) error {
	h := &zip.FileHeader{Name: name, Modified: x.now, Method: zip.Store}
	if deflate {
		h.Method = zip.Deflate
	}
	fw, err := x.zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cw := &countingWriter{w: fw}
	rows, err := write(cw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if name != exportManifest {
		x.m.Files = append(x.m.Files, ExportFile{Name: name, Rows: rows, Bytes: cw.n, Content: content})
	}
	return nil
}

// csv adds a CSV file with header whose rows each gives to row.
func (x *exporter) csv(name, content string, header []string, each func(row func([]string) error) error) error {
	return x.file(name, content, true, func(cw *countingWriter) (int64, error) {
		w := csv.NewWriter(cw)
		if err := w.Write(header); err != nil {
			return 0, err
		}
		var rows int64
		err := each(func(rec []string) error {
			rows++
			return w.Write(rec)
		})
		w.Flush()
		if err == nil {
			err = w.Error()
		}
		return rows, err
	})
}

// jsonArray adds a JSON file holding an array of the elements each gives
// to elem, one a line.
func (x *exporter) jsonArray(name, content string, each func(elem func(any) error) error) error {
	return x.file(name, content, true, func(cw *countingWriter) (int64, error) {
		var rows int64
		sep := "[\n"
		err := each(func(v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(cw, sep); err != nil {
				return err
			}
			sep = ",\n"
			rows++
			_, err = cw.Write(b)
			return err
		})
		if err != nil {
			return rows, err
		}
		end := "\n]\n"
		if rows == 0 {
			end = "[]\n"
		}
		_, err = io.WriteString(cw, end)
		return rows, err
	})
}

// snapshots adds each snapshot stored in the period as
// snapshots/<id>-<camera>.jpg, and snapshots.csv describing them.
func (x *exporter) snapshots(ctx context.Context, db *store.Store, from, to time.Time) error {
	var list []store.Snapshot // descriptions only: the pictures go one by one
	err := db.EachSnapshot(ctx, from, to, func(sn store.Snapshot, pic []byte) error {
		list = append(list, sn)
		return x.file(snapshotFile(sn), fmt.Sprintf("snapshot %d of camera %s, stored %s by %s, blurred: %t",
			sn.ID, sn.Camera, sn.At.UTC().Format(time.RFC3339), sn.By, sn.Blurred), false,
			func(cw *countingWriter) (int64, error) {
				_, err := cw.Write(pic)
				return 1, err
			})
	})
	if err != nil {
		return err
	}
	return x.csv(exportSnapshots, "the snapshots stored in the period and their files",
		[]string{"id", "camera", "at", "by", "blurred", "width", "height", "file"}, func(row func([]string) error) error {
			for _, sn := range list {
				if err := row([]string{strconv.FormatInt(sn.ID, 10), csvText(sn.Camera), sn.At.UTC().Format(time.RFC3339Nano),
					csvText(sn.By), strconv.FormatBool(sn.Blurred), strconv.Itoa(sn.Width), strconv.Itoa(sn.Height), snapshotFile(sn)}); err != nil {
					return err
				}
			}
			return nil
		})
}

// snapshotFile is the archive path of a snapshot's picture. Camera names
// are config names, checked to be plain; the id makes the name unique.
func snapshotFile(sn store.Snapshot) string {
	return fmt.Sprintf("snapshots/%d-%s.jpg", sn.ID, safeFileName(sn.Camera))
}

// safeFileName keeps letters, digits, '-', '_' and '.' of s, replacing
// anything else with '_'.
func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// exportAPI serves GET /api/v1/export to admins.
type exportAPI struct {
	auth *Auth
	db   *store.Store
	site *config.Config
	log  *slog.Logger
}

// registerExportAPI adds GET /api/v1/export to mux when cfg has an Auth
// and a Store.
func registerExportAPI(mux *http.ServeMux, cfg Config, log *slog.Logger) {
	if cfg.Auth == nil || cfg.Store == nil {
		return
	}
	a := &exportAPI{auth: cfg.Auth, db: cfg.Store, site: cfg.Site, log: log}
	mux.Handle("GET /api/v1/export", cfg.Auth.Require([]string{RoleAdmin}, http.HandlerFunc(a.export)))
}

// export serves GET /api/v1/export?from=…&to=… (RFC 3339, both needed):
// everything held about the period as a ZIP attachment (WriteExport),
// audited as "export.all" before it is written. An error once the archive
// has begun aborts the answer, so that the client sees it cut short.
func (a *exportAPI) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, _, err := rangeQuery(q)
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case from.IsZero() || to.IsZero():
		writeError(w, http.StatusBadRequest, "from and to: both are needed, as RFC 3339 times")
		return
	case !to.After(from):
		writeError(w, http.StatusBadRequest, "to (%s) must come after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
		return
	}
	p := principal(r)
	period := fmt.Sprintf("%s to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	a.auth.Audit(r, p, "export.all", "everything held", "zip, "+period)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	downloadAs(w, fmt.Sprintf("flowwatch-export-%s-%s.zip", fileTime(from), fileTime(to)))
	w.WriteHeader(http.StatusOK)
	m, err := WriteExport(r.Context(), w, ExportOptions{Store: a.db, Site: a.site, From: from, To: to, By: p.User})
	if err != nil {
		a.log.Error("export failed", "user", p.User, "period", period, "err", err)
		panic(http.ErrAbortHandler)
	}
	a.log.Info("export written", "user", p.User, "period", period, "files", len(m.Files))
}
