// #/planner: counts over time per area/zone (ECharts), CSV export, the
// heatmap of a camera over the period, and rule backtests marked on the chart.

import { blobURL, enc, get, post, query } from "../api";
import { loadCameras } from "../cameras";
import { echarts, type EChartsType } from "../chart";
import { fontStack, levelColors } from "../components/overlay";
import { icon } from "../icons";
import { fill, h, notice } from "../dom";
import { describe } from "../errors";
import { fmtCount, fmtTime, t, type Key } from "../i18n";
import { canBacktest, may } from "../session";
import type { Alert, BacktestResult, CountSeries, StoredSnapshot, TargetStatus } from "../types";

type RangeKind = "day" | "week" | "custom";
interface Range {
  kind: RangeKind;
  from: Date;
  to: Date;
}

const hour = 3600_000;
/** Data spans up to this long are drawn in seconds (the server's step=auto does so up to an hour). */
const fineSpan = hour;

function lastHours(kind: RangeKind, hours: number): Range {
  const to = new Date();
  return { kind, from: new Date(to.getTime() - hours * hour), to };
}

/** A Date as the value of an <input type="datetime-local"> (local time). */
function localInput(d: Date): string {
  const off = d.getTimezoneOffset() * 60_000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

export function renderPlanner(root: HTMLElement): () => void {
  let range = lastHours("day", 24);
  let targets: TargetStatus[] = [];
  const selected = new Set<string>();
  let series: CountSeries[] = [];
  let backtest: BacktestResult | null = null;
  let destroyed = false;
  let heatURL = "";

  // --- controls
  const rangeBtns = (["day", "week", "custom"] as const).map((k) =>
    h("button", { class: "btn btn-seg", type: "button", "data-test": `range-${k}`, onclick: () => pickRange(k) }, t(`planner.${k}` as Key)),
  );
  const fromIn = h("input", { type: "datetime-local", "aria-label": t("common.from") });
  const toIn = h("input", { type: "datetime-local", "aria-label": t("common.to") });
  const customBox = h(
    "form",
    { class: "custom-range", hidden: true },
    h("label", { class: "inline" }, t("common.from"), fromIn),
    h("label", { class: "inline" }, t("common.to"), toIn),
    h("button", { class: "btn", type: "submit", "data-test": "range-apply" }, t("common.apply")),
  );
  customBox.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = new Date(fromIn.value);
    const to = new Date(toIn.value);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) return;
    range = { kind: "custom", from, to };
    reloadAll();
  });
  const csv = h("a", { class: "btn", "data-test": "export-csv", download: "counts.csv" }, icon("download"), t("planner.exportCsv"));
  const targetBox = h("div", { class: "target-chips", role: "group", "aria-label": t("planner.targets") });

  // --- chart
  const chartMsg = h("div", {});
  const chartEl = h("div", { class: "chart", "data-test": "chart" });
  const zoomNote = h("p", { class: "muted small chart-note", "data-test": "chart-zoom-note", hidden: true });
  const chart: EChartsType = echarts.init(chartEl, undefined, { renderer: "canvas" });
  const resize = new ResizeObserver(() => chart.resize());
  resize.observe(chartEl);

  // --- heatmap
  const camSel = h("select", { "data-test": "heatmap-camera", "aria-label": t("planner.camera") });
  const heatImg = h("img", { class: "heatmap-img", "data-test": "heatmap", alt: t("planner.heatmap") });
  const heatMsg = h("div", {});
  const heatHint = h("p", { class: "muted small heatmap-hint", "data-test": "heatmap-hint", hidden: true });
  const png = h("a", { class: "btn", "data-test": "export-png", download: "heatmap.png" }, icon("download"), t("planner.exportPng"));
  camSel.addEventListener("change", () => void loadHeatmap());

  // --- backtest
  const num = (name: string, value: string) => h("input", { name, type: "number", step: "0.05", min: "0.05", max: "2", value, required: true });
  const dur = (name: string, value: string) => h("input", { name, value, pattern: "\\d+(\\.\\d+)?(ms|s|m|h)", required: true });
  const fields = { yellow: num("yellow", "0.8"), orange: num("orange", "0.9"), red: num("red", "1.0"), min_duration: dur("min_duration", "10s"), smoothing: dur("smoothing", "10s") };
  const runBtn = h("button", { class: "btn btn-primary", type: "submit", "data-test": "backtest-run" }, t("planner.run"));
  const btResult = h("div", { class: "backtest-result", "data-test": "backtest-result", "aria-live": "polite" });
  const btForm = h(
    "form",
    { class: "backtest-form" },
    h("label", { class: "field" }, h("span", {}, t("planner.yellow")), fields.yellow),
    h("label", { class: "field" }, h("span", {}, t("planner.orange")), fields.orange),
    h("label", { class: "field" }, h("span", {}, t("planner.red")), fields.red),
    h("label", { class: "field" }, h("span", {}, t("planner.minDuration")), fields.min_duration),
    h("label", { class: "field" }, h("span", {}, t("planner.smoothing")), fields.smoothing),
    h("div", { class: "field field-end" }, runBtn),
  );
  btForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void runBacktest();
  });

  fill(
    root,
    h(
      "div",
      { class: "page planner-page" },
      h("h1", { class: "page-title" }, t("planner.title")),
      h("div", { class: "toolbar" }, h("div", { class: "seg", role: "group" }, rangeBtns), customBox, h("span", { class: "spacer" }), csv),
      targetBox,
      h("section", { class: "card" }, chartMsg, chartEl, zoomNote),
      h(
        "div",
        { class: "planner-row" },
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", {}, t("planner.heatmap")), camSel, h("span", { class: "spacer" }), png),
          heatMsg,
          h("div", { class: "heatmap-box" }, heatImg),
          heatHint,
        ),
        canBacktest()
          ? h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, t("planner.backtest"))), btForm, btResult)
          : null,
      ),
    ),
  );

  const pickRange = (k: RangeKind) => {
    customBox.hidden = k !== "custom";
    if (k === "custom") {
      range = { ...range, kind: "custom" };
      fromIn.value = localInput(range.from);
      toIn.value = localInput(range.to);
      paintControls();
      return;
    }
    range = k === "day" ? lastHours("day", 24) : lastHours("week", 24 * 7);
    reloadAll();
  };

  const paintControls = () => {
    rangeBtns.forEach((b, i) => b.setAttribute("aria-pressed", String(["day", "week", "custom"][i] === range.kind)));
    csv.href = `/api/v1/counts${query({ target: [...selected], from: range.from.toISOString(), to: range.to.toISOString(), step: "auto", format: "csv" })}`;
    fill(
      targetBox,
      targets.map((s) => {
        const box = h("input", { type: "checkbox", checked: selected.has(s.target) });
        box.addEventListener("change", () => {
          if (box.checked) selected.add(s.target);
          else selected.delete(s.target);
          void loadCounts();
        });
        return h("label", { class: `chip${s.target.startsWith("zone:") ? " chip-zone" : ""}` }, box, s.title || s.target);
      }),
    );
  };

  const titleOf = (target: string) => targets.find((s) => s.target === target)?.title || target;

  const loadCounts = async () => {
    paintControls();
    fill(chartMsg);
    if (selected.size === 0) {
      series = [];
      drawChart();
      return;
    }
    const counts = (from: number, to: number) =>
      get<{ step: string; series: CountSeries[] | null }>(
        `/api/v1/counts${query({ target: [...selected], from: new Date(from).toISOString(), to: new Date(to).toISOString(), step: "auto" })}`,
      );
    try {
      const res = await counts(range.from.getTime(), range.to.getTime());
      if (destroyed) return;
      series = res.series ?? [];
      if (series.every((s) => !s.points?.length)) fill(chartMsg, notice(t("planner.noData"), "info"));
      // A long period answers in minutes; when all its data lies in an hour
      // or less (a fresh site), that hour again in seconds draws more than a
      // couple of points. Nothing outside it is lost: it has no data.
      const win = dataWindow();
      if (win && win.end - win.start <= fineSpan && range.to.getTime() - range.from.getTime() > fineSpan) {
        const fine = await counts(win.start, win.end).catch(() => null);
        if (destroyed) return;
        if (fine?.series?.some((s) => s.points?.length)) series = fine.series;
      }
    } catch (err) {
      series = [];
      fill(chartMsg, notice(describe(err, "/api/v1/counts")));
    }
    drawChart();
  };

  /**
   * The part of the range to show first: the span that has data, with a
   * margin, when it covers much less than the range (a fresh site's few
   * minutes in the last 24 h); else the whole range.
   */
  const dataWindow = (): { lo: number; hi: number; start: number; end: number } | null => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of series) {
      for (const p of s.points ?? []) {
        const at = Date.parse(p.time);
        if (Number.isNaN(at)) continue;
        lo = Math.min(lo, at);
        hi = Math.max(hi, at);
      }
    }
    for (const a of backtest?.alerts ?? []) {
      for (const at of [Date.parse(a.opened_at), a.resolved_at ? Date.parse(a.resolved_at) : NaN]) {
        if (Number.isNaN(at)) continue;
        lo = Math.min(lo, at);
        hi = Math.max(hi, at);
      }
    }
    const from = range.from.getTime();
    const to = range.to.getTime();
    if (!Number.isFinite(lo) || to - from <= 0) return null;
    const span = hi - lo;
    if (span > (to - from) * 0.4) return null;
    const pad = Math.max(span * 0.08, 60_000);
    let start = Math.max(from, lo - pad);
    let end = Math.min(to, hi + pad);
    // at least five minutes, so that a single point is not lost on an empty axis
    const least = 5 * 60_000;
    if (end - start < least) {
      const mid = (start + end) / 2;
      start = Math.max(from, mid - least / 2);
      end = Math.min(to, start + least);
      start = Math.max(from, end - least);
    }
    return { lo, hi, start, end };
  };

  const drawChart = () => {
    const alerts = backtest?.alerts ?? [];
    const win = dataWindow();
    zoomNote.hidden = !win;
    zoomNote.textContent = win ? t("planner.zoomed", { from: fmtTime(new Date(win.lo).toISOString(), true), to: fmtTime(new Date(win.hi).toISOString(), true) }) : "";
    const zoom = win ? { startValue: win.start, endValue: win.end } : {};
    const seriesFor = (a: Alert) => Math.max(0, series.findIndex((s) => s.target === a.target));
    chart.setOption(
      {
        backgroundColor: "transparent",
        textStyle: { color: "#cbd5e1", fontFamily: fontStack },
        color: ["#38bdf8", "#a78bfa", "#34d399", "#f472b6", "#fbbf24", "#60a5fa", "#f87171", "#2dd4bf"],
        grid: { left: 48, right: 24, top: 40, bottom: 64 },
        // richText: drawn on the canvas. The HTML tooltip writes style=""
        // attributes into its markup, which the console's CSP refuses.
        tooltip: {
          trigger: "axis",
          renderMode: "richText",
          backgroundColor: "rgba(15, 23, 42, 0.94)",
          borderColor: "#334155",
          borderWidth: 1,
          padding: [6, 10],
          textStyle: { color: "#e2e8f0", fontFamily: fontStack, fontSize: 12 },
          valueFormatter: (v: unknown) => (typeof v === "number" ? fmtCount(v) : String(v ?? "")),
        },
        legend: { top: 4, textStyle: { color: "#cbd5e1" } },
        xAxis: { type: "time", min: range.from.getTime(), max: range.to.getTime(), axisLine: { lineStyle: { color: "#475569" } } },
        yAxis: { type: "value", min: 0, splitLine: { lineStyle: { color: "#1e293b" } } },
        dataZoom: [
          { type: "inside", ...zoom },
          { type: "slider", height: 20, bottom: 12, borderColor: "#334155", ...zoom },
        ],
        series: series.map((s, i) => {
          const mine = alerts.filter((a) => seriesFor(a) === i);
          return {
            type: "line",
            name: s.title || titleOf(s.target),
            showSymbol: false,
            sampling: "lttb",
            data: (s.points ?? []).map((p) => [p.time, Math.round(p.count * 10) / 10]),
            markArea: mine.length
              ? {
                  silent: true,
                  data: mine.map((a) => [
                    { xAxis: a.opened_at, itemStyle: { color: levelColors[a.level] ?? levelColors[""], opacity: 0.16 } },
                    { xAxis: a.resolved_at || range.to.toISOString() },
                  ]),
                }
              : undefined,
            markPoint: mine.length
              ? {
                  symbol: "pin",
                  symbolSize: 36,
                  label: { fontSize: 10, color: "#0f172a" },
                  data: mine.map((a) => ({
                    coord: [a.opened_at, a.count],
                    value: t(`level.${a.level}` as Key).slice(0, 2),
                    itemStyle: { color: levelColors[a.level] ?? levelColors[""] },
                  })),
                }
              : undefined,
          };
        }),
      },
      { notMerge: true },
    );
  };

  /** Says how to get the camera's picture behind the heatmap when it has no stored snapshot. */
  const checkBackground = async (cam: string) => {
    try {
      const res = await get<{ snapshots: StoredSnapshot[] | null }>(`/api/v1/cameras/${enc(cam)}/snapshots`);
      if (destroyed || camSel.value !== cam) return;
      const none = !(res.snapshots ?? []).length;
      fill(heatHint, none ? t("planner.noBackground") : null);
      if (none && may("admin")) {
        heatHint.append(" ", h("a", { href: "#/admin/cameras", "data-test": "heatmap-hint-link" }, `${t("nav.admin")} → ${t("admin.cameras")}`));
      }
      heatHint.hidden = !none;
    } catch {
      // an older server, or a role that may not list them: no hint
      heatHint.hidden = true;
    }
  };

  const loadHeatmap = async () => {
    const cam = camSel.value;
    if (!cam) return;
    void checkBackground(cam);
    const q = query({ from: range.from.toISOString(), to: range.to.toISOString() });
    png.href = `/api/v1/heatmaps/${enc(cam)}${q}&download=1`;
    fill(heatMsg, h("p", { class: "muted" }, t("common.loading")));
    try {
      const url = await blobURL(`/api/v1/heatmaps/${enc(cam)}${q}`);
      if (destroyed || camSel.value !== cam) {
        URL.revokeObjectURL(url);
        return;
      }
      if (heatURL) URL.revokeObjectURL(heatURL);
      heatURL = url;
      heatImg.src = url;
      fill(heatMsg);
    } catch (err) {
      fill(heatMsg, notice(describe(err, "/api/v1/heatmaps")));
    }
  };

  const runBacktest = async () => {
    runBtn.disabled = true;
    fill(btResult, h("p", { class: "muted" }, t("planner.running")));
    try {
      const res = await post<BacktestResult>("/api/v1/rules/backtest", {
        from: range.from.toISOString(),
        to: range.to.toISOString(),
        rules: {
          yellow: Number(fields.yellow.value),
          orange: Number(fields.orange.value),
          red: Number(fields.red.value),
          min_duration: fields.min_duration.value.trim(),
          smoothing: fields.smoothing.value.trim(),
        },
      });
      if (destroyed) return;
      backtest = res;
      paintBacktest(res);
      const missing = (res.alerts ?? []).map((a) => a.target).filter((tg) => !selected.has(tg) && targets.some((s) => s.target === tg));
      if (missing.length) {
        missing.forEach((tg) => selected.add(tg));
        await loadCounts();
      } else drawChart();
    } catch (err) {
      fill(btResult, notice(describe(err, "/api/v1/rules/backtest")));
    } finally {
      runBtn.disabled = false;
    }
  };

  const paintBacktest = (res: BacktestResult) => {
    const alerts = res.alerts ?? [];
    fill(
      btResult,
      h("p", { class: "backtest-summary" }, t("planner.result", { samples: fmtCount(res.samples), n: alerts.length })),
      alerts.length
        ? h(
            "ul",
            { class: "backtest-list" },
            alerts.map((a) =>
              h(
                "li",
                { "data-level": a.level },
                h("span", { class: `badge level-${a.level}` }, t(`level.${a.level}` as Key)),
                h("strong", {}, a.title || titleOf(a.target)),
                h("span", { class: "muted" }, `${fmtTime(a.opened_at, true)} · ${a.resolved_at ? t("planner.resolved", { time: fmtTime(a.resolved_at, true) }) : t("planner.ongoing")}`),
                h("span", {}, fmtCount(a.count)),
              ),
            ),
          )
        : null,
    );
  };

  const reloadAll = () => {
    backtest = null;
    fill(btResult);
    void loadCounts();
    void loadHeatmap();
  };

  paintControls();
  drawChart();
  get<{ targets: TargetStatus[] }>("/api/v1/areas")
    .then((res) => {
      if (destroyed) return;
      targets = res.targets ?? [];
      const areas = targets.filter((s) => s.target.startsWith("area:"));
      (areas.length ? areas : targets).forEach((s) => selected.add(s.target));
      void loadCounts();
    })
    .catch((err: unknown) => fill(chartMsg, notice(describe(err, "/api/v1/areas"))));
  loadCameras()
    .then((list) => {
      if (destroyed) return;
      fill(camSel, list.cameras.map((c) => h("option", { value: c.name }, c.title || c.name)));
      void loadHeatmap();
    })
    .catch((err: unknown) => fill(heatMsg, notice(describe(err, "/api/v1/cameras"))));

  return () => {
    destroyed = true;
    resize.disconnect();
    chart.dispose();
    if (heatURL) URL.revokeObjectURL(heatURL);
  };
}
