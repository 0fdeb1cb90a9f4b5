package console

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"flowwatch/alerting"
)

// AreaStatus reports where every watched zone and area stands now; the
// alerting engine implements it.
type AreaStatus interface {
	Status(now time.Time) []alerting.TargetStatus
}

// publicArea is one area on the public comfort page: what a visitor may
// know, and nothing about cameras or zones.
type publicArea struct {
	Area     string           `json:"area"`
	Title    string           `json:"title"`
	Known    bool             `json:"known"`
	Visitors int              `json:"visitors,omitempty"`
	Capacity int              `json:"capacity"`
	Percent  int              `json:"percent,omitempty"`
	Comfort  alerting.Comfort `json:"comfort"`
	// DailyCapacity is the day's carrying capacity, when a turnover is set.
	DailyCapacity int `json:"daily_capacity,omitempty"`
}

// publicComfort is the answer of GET /api/v1/public/comfort.
type publicComfort struct {
	Updated time.Time    `json:"updated"`
	Areas   []publicArea `json:"areas"`
}

// comfort serves every area's comfort level (舒适度) without login.
func (s *Server) comfort(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	out := publicComfort{Updated: now.UTC().Truncate(time.Second), Areas: []publicArea{}}
	for _, st := range s.cfg.Areas.Status(now) {
		name, ok := strings.CutPrefix(string(st.Target), "area:")
		if !ok {
			continue
		}
		a := publicArea{Area: name, Title: st.Title, Known: st.Known, Capacity: st.Capacity,
			Comfort: st.Comfort, DailyCapacity: st.DailyCapacity}
		if st.Known {
			a.Visitors = int(math.Round(st.Count))
			a.Percent = int(math.Round(st.Ratio * 100))
		}
		out.Areas = append(out.Areas, a)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
