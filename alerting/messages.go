package alerting

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"flowwatch/internal/event"
)

// describe fills an alert's figures, diversion advice and messages from
// its target's current state.
func (e *Engine) describe(a *event.Alert, t *target) {
	a.Count = math.Round(t.value*10) / 10
	a.Capacity = t.capacity
	if t.capacity > 0 {
		a.Ratio = math.Round(t.value/float64(t.capacity)*1000) / 1000
	}
	a.Advice = nil
	if t.area != nil && (a.Rule == event.RuleCapacity || a.Rule == event.RuleForecast || a.Rule == event.RuleSurge) {
		a.Advice = e.advise(t.area)
	}
	pct := int(math.Round(a.Ratio * 100))
	count := int(math.Round(t.value))
	words := levelWords[a.Level]
	var zh, en string
	switch a.Rule {
	case event.RuleCapacity:
		doZH, doEN := action(a.Level)
		zh = fmt.Sprintf("「%s」当前约 %d 人，达到承载量 %d 人的 %d%%，%s。%s。", t.title, count, t.capacity, pct, words.zh, doZH)
		en = fmt.Sprintf("%s holds about %d people, %d%% of its capacity of %d: %s. %s", t.title, count, pct, t.capacity, words.en, doEN)
	case event.RuleSurge:
		slope, _ := e.surgeSlope(t)
		zh = fmt.Sprintf("「%s」人数快速上升，每分钟约增加 %.0f 人（当前约 %d 人，承载量的 %d%%），请提前分流。", t.title, slope, count, pct)
		en = fmt.Sprintf("%s is filling fast: about %.0f more people a minute (now about %d, %d%% of capacity). Start diverting early.", t.title, slope, count, pct)
	case event.RuleForecast:
		slope, _ := e.forecastSlope(t)
		mins := 0
		if slope > 0 {
			mins = int(math.Ceil((e.tiers.bounds[2]*float64(t.capacity) - t.value) / slope))
		}
		zh = fmt.Sprintf("按当前趋势，「%s」约 %d 分钟后达到承载量 %d 人（当前约 %d 人）。", t.title, mins, t.capacity, count)
		en = fmt.Sprintf("At the current trend %s reaches its capacity of %d in about %d minutes (now about %d).", t.title, t.capacity, mins, count)
	default:
		return
	}
	adviceZH, adviceEN := adviceText(a.Advice)
	if t.area != nil {
		zh += adviceZH
		en += " " + adviceEN
	}
	a.Message, a.MessageEN = zh, strings.TrimSpace(en)
}

// action says what a capacity tier asks staff to do.
func action(l event.Level) (zh, en string) {
	switch l {
	case event.LevelYellow:
		return "请启动分流引导，并发布游客提示", "Start diverting visitors and post a public notice."
	case event.LevelOrange:
		return "请限制入场，暂停团队进入", "Restrict entry; hold tour groups."
	case event.LevelRed:
		return "请立即停止入场和售票", "Stop entry and ticket sales now."
	}
	return "", ""
}

// advise lists the linked neighbours of an area that have room below the
// yellow tier, least loaded first; a neighbour whose count is unknown is
// never suggested.
func (e *Engine) advise(a *areaState) []event.Diversion {
	var out []event.Diversion
	for _, l := range a.links {
		n := e.areas[l.To]
		t := n.target
		if !t.known || t.capacity <= 0 {
			continue
		}
		ratio := t.value / float64(t.capacity)
		room := int(math.Floor(e.tiers.bounds[0]*float64(t.capacity) - t.value))
		if room <= 0 {
			continue
		}
		out = append(out, event.Diversion{Area: n.cfg.Name, Title: t.title, Ratio: math.Round(ratio*1000) / 1000,
			Room: room, Route: l.Route, WalkMinutes: l.WalkMinutes})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ratio < out[j].Ratio })
	return out
}

// adviceText words the diversion advice for guards.
func adviceText(advice []event.Diversion) (zh, en string) {
	if len(advice) == 0 {
		return "周边区域暂无余量，请在入口处限流。", "No neighbouring area has room: hold visitors at the entrance."
	}
	var zs, es []string
	for _, d := range advice {
		z := fmt.Sprintf("「%s」（%d%%，尚可容纳约 %d 人", d.Title, int(math.Round(d.Ratio*100)), d.Room)
		s := fmt.Sprintf("%s (%d%% full, room for about %d", d.Title, int(math.Round(d.Ratio*100)), d.Room)
		if d.WalkMinutes > 0 {
			z += fmt.Sprintf("，步行约 %g 分钟", d.WalkMinutes)
			s += fmt.Sprintf(", %g min walk", d.WalkMinutes)
		}
		z += "）"
		s += ")"
		if d.Route != "" {
			z = "经" + d.Route + "前往" + z
			s = "via " + d.Route + " to " + s
		}
		zs = append(zs, z)
		es = append(es, s)
	}
	return "建议引导游客" + strings.Join(zs, "，或") + "。", "Send visitors " + strings.Join(es, ", or ") + "."
}

func statusZH(s event.CameraStatus) string {
	switch s {
	case event.CameraStalled:
		return "无画面"
	case event.CameraUnauthorized:
		return "认证失败"
	case event.CameraStopped:
		return "停止"
	}
	return "离线"
}

func durationZH(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d 秒", int(d.Seconds()))
	}
	return fmt.Sprintf("%d 分钟", int(d.Minutes()))
}
