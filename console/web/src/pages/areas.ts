// #/areas: one card per area with count, capacity and comfort grade,
// updated from the /ws "status" feed.

import { get } from "../api";
import { comfortName, gradeOf } from "../components/comfort";
import { fill, h, notice } from "../dom";
import { fmtCount, t } from "../i18n";
import * as live from "../live";
import type { TargetStatus } from "../types";

export function renderAreas(root: HTMLElement): () => void {
  const grid = h("div", { class: "area-grid" }, h("p", { class: "muted" }, t("common.loading")));
  fill(root, h("div", { class: "page" }, h("h1", { class: "page-title" }, t("areas.title")), grid));

  const paint = (all: TargetStatus[]) => {
    const areas = all.filter((s) => s.target.startsWith("area:"));
    if (areas.length === 0) {
      fill(grid, h("p", { class: "empty" }, t("areas.empty")));
      return;
    }
    fill(grid, areas.map(areaCard));
  };
  const off = live.on("status", paint);
  get<{ targets: TargetStatus[] }>("/api/v1/areas")
    .then((res) => {
      if (live.latestStatus().length === 0) paint(res.targets ?? []);
    })
    .catch((err: unknown) => fill(grid, notice(t("common.error", { msg: err instanceof Error ? err.message : String(err) }))));
  return off;
}

function areaCard(a: TargetStatus): HTMLElement {
  const name = a.target.slice(5);
  const grade = gradeOf(a.comfort, a.known);
  const pct = a.known && a.capacity > 0 ? Math.round(a.ratio * 100) : null;
  return h(
    "article",
    { class: `card area-card grade-${grade}`, "data-test": "area", "data-area": name, "data-grade": grade },
    h("header", { class: "area-head" }, h("h2", {}, a.title || name), h("span", { class: `grade-chip grade-${grade}` }, comfortName(grade))),
    h(
      "div",
      { class: "area-figures" },
      h("span", { class: "big-number" }, a.known ? fmtCount(a.count) : "—"),
      h("span", { class: "muted" }, ` / ${a.capacity || "—"} ${t("common.people")}`),
      pct !== null ? h("span", { class: "area-pct" }, `${pct}%`) : null,
    ),
    h("div", { class: "meter", role: "meter", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct ?? 0 }, meterFill(pct, grade)),
    a.daily_capacity ? h("p", { class: "muted small" }, t("areas.daily", { n: a.daily_capacity })) : null,
  );
}

function meterFill(pct: number | null, grade: number): HTMLElement {
  const bar = h("div", { class: `meter-fill grade-${grade}` });
  bar.style.width = `${Math.min(100, Math.max(0, pct ?? 0))}%`;
  return bar;
}
