package event

import "time"

// Level is how serious an alert is.
type Level string

// Alert levels, least serious first. Capacity tiers use yellow, orange and
// red as scenic areas run them; surge, forecast and camera health alerts
// carry the level their rule gives them.
const (
	LevelInfo   Level = "info"
	LevelYellow Level = "yellow"
	LevelOrange Level = "orange"
	LevelRed    Level = "red"
)

// Rank orders levels: 0 for info up to 3 for red; -1 for anything else.
func (l Level) Rank() int {
	switch l {
	case LevelInfo:
		return 0
	case LevelYellow:
		return 1
	case LevelOrange:
		return 2
	case LevelRed:
		return 3
	}
	return -1
}

// AlertState is where an alert is in its lifecycle.
type AlertState string

// Alert lifecycle: open → acknowledged → resolved (or open → resolved).
const (
	AlertOpen         AlertState = "open"
	AlertAcknowledged AlertState = "acknowledged"
	AlertResolved     AlertState = "resolved"
)

// Rule kinds.
const (
	RuleCapacity = "capacity"
	RuleSurge    = "surge"
	RuleForecast = "forecast"
	RuleCamera   = "camera"
)

// Alert is one condition on one target, from when it was raised until it
// is resolved. At most one alert per Key is not resolved at any time.
type Alert struct {
	// ID is the store's number for the alert; 0 before it is stored.
	ID int64 `json:"id"`
	// Key is Rule and Target together, "capacity|area:plaza".
	Key string `json:"key"`
	// Rule is the kind of rule: capacity, surge, forecast or camera.
	Rule string `json:"rule"`
	// Target is the zone, area or camera concerned.
	Target Target `json:"target"`
	// Title is the target's human name.
	Title string `json:"title"`
	// Level is the current level; a capacity alert moves between tiers
	// while it stays open.
	Level Level `json:"level"`
	// State is the lifecycle state.
	State AlertState `json:"state"`
	// Count is the smoothed count when the alert last changed; Capacity
	// the target's capacity in people (0 when none) and Ratio Count over
	// Capacity.
	Count    float64 `json:"count"`
	Capacity int     `json:"capacity,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	// Message says what happened and what to do, in Chinese and English.
	Message   string `json:"message"`
	MessageEN string `json:"message_en"`
	// Advice lists neighbouring areas with room, least loaded first.
	Advice []Diversion `json:"advice,omitempty"`
	// OpenedAt is when the alert was raised; UpdatedAt when it last
	// changed.
	OpenedAt  time.Time `json:"opened_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// AckedAt, AckedBy and AckNote record the acknowledgement.
	AckedAt time.Time `json:"acked_at,omitzero"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckNote string    `json:"ack_note,omitempty"`
	// ResolvedAt and ResolvedBy record the resolution; ResolvedBy is
	// "system" when the condition cleared by itself.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	// EscalatedAt is when the alert was escalated for want of an
	// acknowledgement; EscalatedTo the role or channel it went to.
	EscalatedAt time.Time `json:"escalated_at,omitzero"`
	EscalatedTo string    `json:"escalated_to,omitempty"`
	// Posts are the areas whose guards the alert is for.
	Posts []string `json:"posts,omitempty"`
	// Owner is who holds the alert after a handover; empty before one.
	Owner string `json:"owner,omitempty"`
}

// Diversion is one suggestion to send visitors from a crowded area to a
// neighbour with room.
type Diversion struct {
	// Area and Title name the neighbour.
	Area  string `json:"area"`
	Title string `json:"title"`
	// Ratio is the neighbour's count over its capacity; -1 when its count
	// is unknown.
	Ratio float64 `json:"ratio"`
	// Room is how many more people it holds before its first tier.
	Room int `json:"room"`
	// Route is the gate or path to take; WalkMinutes how long it takes.
	Route       string  `json:"route,omitempty"`
	WalkMinutes float64 `json:"walk_minutes,omitempty"`
}

// AlertChangeKind says what happened to an alert.
type AlertChangeKind string

// The changes an alert goes through.
const (
	AlertRaised       AlertChangeKind = "raised"
	AlertLevelChanged AlertChangeKind = "level"
	AlertAcked        AlertChangeKind = "acknowledged"
	AlertEscalated    AlertChangeKind = "escalated"
	AlertNoted        AlertChangeKind = "note"
	AlertHandedOver   AlertChangeKind = "handover"
	AlertCleared      AlertChangeKind = "resolved"
)

// AlertChange is one step in an alert's life, as stored and delivered:
// the alert as it stands after the change.
type AlertChange struct {
	// Kind is what happened.
	Kind AlertChangeKind `json:"kind"`
	// At is when it happened.
	At time.Time `json:"at"`
	// By is who did it: a user name, or "system".
	By string `json:"by"`
	// Note is the text of a note or acknowledgement.
	Note string `json:"note,omitempty"`
	// Alert is the alert after the change.
	Alert Alert `json:"alert"`
}
