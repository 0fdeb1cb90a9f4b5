// #/zones/<camera>: draw and edit the camera's zone polygons over its
// snapshot, name them and give capacities, place four calibration points
// with their ground coordinates, and save to the server.

import { blobURL, enc, get, isMissingRoute, put } from "../api";
import { drawLabel, fontStack, polygonPath, type Rect } from "../components/overlay";
import { fill, h, notice } from "../dom";
import { describe } from "../errors";
import { t } from "../i18n";
import type { Point, Zone, ZoneSet } from "../types";

type Mode = "edit" | "draw" | "calibrate";
type Drag = { kind: "vertex"; zone: number; idx: number } | { kind: "zone"; zone: number; last: Point } | { kind: "calib"; idx: number };

const hitRadius = 9; // CSS pixels
const round = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

export function renderZones(root: HTMLElement, camera: string): () => void {
  let zones: Zone[] = [];
  let selected = -1;
  let drawing: Point[] | null = null;
  let calImage: Point[] = [];
  let calGround: Point[] = [];
  let mode: Mode = "edit";
  let drag: Drag | null = null;
  let bg: HTMLImageElement | null = null;
  let bgURL = "";
  let aspect = 16 / 9;
  let destroyed = false;

  const canvas = h("canvas", { class: "zone-canvas", "data-test": "zone-canvas", tabindex: 0 });
  const status = h("p", { class: "zone-status", "data-test": "zone-status", role: "status" });
  const msg = h("div", {});
  const zoneList = h("div", { class: "zone-rows" });
  const calList = h("div", { class: "cal-rows" });
  const btn = (label: string, test: string, fn: () => void, cls = "btn") => h("button", { class: cls, type: "button", "data-test": test, onclick: fn }, label);
  const newBtn = btn(t("zones.new"), "zone-new", () => setMode(mode === "draw" ? "edit" : "draw"));
  const finishBtn = btn(t("zones.finish"), "zone-finish", () => finishDrawing());
  const delBtn = btn(t("zones.delete"), "zone-delete", () => deleteZone(selected), "btn btn-danger");
  const calBtn = btn(t("zones.calibrate"), "zone-calibrate", () => setMode(mode === "calibrate" ? "edit" : "calibrate"));
  const saveBtn = btn(t("common.save"), "zone-save", () => void save(), "btn btn-primary");

  fill(
    root,
    h(
      "div",
      { class: "page zones-page" },
      h("div", { class: "toolbar" }, h("h1", { class: "page-title" }, t("zones.title", { camera })), h("span", { class: "spacer" }), h("a", { class: "btn btn-ghost", href: "#/admin/cameras" }, t("zones.back"))),
      msg,
      h(
        "div",
        { class: "zones-layout" },
        h("div", { class: "zones-stage" }, h("div", { class: "toolbar" }, newBtn, finishBtn, delBtn, calBtn, h("span", { class: "spacer" }), saveBtn), canvas, status, h("p", { class: "muted small" }, t("zones.help"))),
        h("aside", { class: "zones-side card" }, h("h2", {}, t("zones.list")), zoneList, h("h2", {}, t("zones.calibrate")), calList, btn(t("zones.clearCal"), "zone-clear-cal", () => clearCalibration(), "btn btn-ghost")),
      ),
    ),
  );

  const setStatus = (text: string, state: "idle" | "dirty" | "saving" | "saved" | "error") => {
    status.textContent = text;
    status.dataset.state = state;
  };
  const changed = () => {
    setStatus(t("zones.unsaved"), "dirty");
    paint();
  };

  const setMode = (m: Mode) => {
    if (mode === "draw" && m !== "draw") drawing = null;
    mode = m;
    if (m === "draw") {
      drawing = [];
      selected = -1;
    }
    paint();
  };

  const finishDrawing = () => {
    if (!drawing || drawing.length < 3) return;
    const used = new Set(zones.map((z) => z.name));
    let n = zones.length + 1;
    while (used.has(`zone-${n}`)) n++;
    zones.push({ name: `zone-${n}`, polygon: drawing });
    selected = zones.length - 1;
    drawing = null;
    mode = "edit";
    changed();
    queueMicrotask(() => zoneList.querySelectorAll<HTMLInputElement>("input[name=name]")[selected]?.select());
  };

  const deleteZone = (i: number) => {
    if (i < 0 || i >= zones.length) return;
    zones.splice(i, 1);
    selected = -1;
    changed();
  };

  const clearCalibration = () => {
    calImage = [];
    calGround = [];
    changed();
  };

  // --- geometry
  const size = () => ({ w: canvas.clientWidth, h: canvas.clientHeight });
  const rect = (): Rect => ({ x: 0, y: 0, ...size() });
  const toNorm = (ev: PointerEvent | MouseEvent): Point => {
    const b = canvas.getBoundingClientRect();
    return [round((ev.clientX - b.left) / b.width), round((ev.clientY - b.top) / b.height)];
  };
  const near = (a: Point, b: Point) => {
    const { w, h: hh } = size();
    return Math.hypot((a[0] - b[0]) * w, (a[1] - b[1]) * hh) <= hitRadius;
  };
  const inside = (p: Point, poly: Point[]) => {
    let in_ = false;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const [xi, yi] = poly[i];
      const [xj, yj] = poly[j];
      if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) in_ = !in_;
    }
    return in_;
  };
  const hitVertex = (p: Point): Drag | null => {
    const order = selected >= 0 ? [selected, ...zones.keys()] : [...zones.keys()];
    for (const zi of order) {
      const idx = zones[zi]?.polygon.findIndex((v) => near(v, p)) ?? -1;
      if (idx >= 0) return { kind: "vertex", zone: zi, idx };
    }
    return null;
  };

  // --- pointer handling
  canvas.addEventListener("pointerdown", (ev) => {
    const p = toNorm(ev);
    canvas.focus();
    if (mode === "draw") {
      if (drawing && drawing.length >= 3 && near(drawing[0], p)) finishDrawing();
      else drawing?.push(p);
      paint();
      return;
    }
    if (mode === "calibrate") {
      const idx = calImage.findIndex((v) => near(v, p));
      if (idx >= 0) drag = { kind: "calib", idx };
      else if (calImage.length < 4) {
        calImage.push(p);
        calGround.push([0, 0]);
        changed();
      }
      canvas.setPointerCapture(ev.pointerId);
      return;
    }
    drag = hitVertex(p);
    if (drag?.kind === "vertex") selected = drag.zone;
    else {
      selected = zones.findIndex((z) => inside(p, z.polygon));
      drag = selected >= 0 ? { kind: "zone", zone: selected, last: p } : null;
    }
    if (drag) canvas.setPointerCapture(ev.pointerId);
    paint();
  });
  canvas.addEventListener("pointermove", (ev) => {
    const p = toNorm(ev);
    if (!drag) {
      canvas.style.cursor = mode !== "edit" ? "crosshair" : hitVertex(p) ? "grab" : zones.some((z) => inside(p, z.polygon)) ? "move" : "default";
      return;
    }
    if (drag.kind === "vertex") zones[drag.zone].polygon[drag.idx] = p;
    else if (drag.kind === "calib") calImage[drag.idx] = p;
    else {
      const dx = p[0] - drag.last[0];
      const dy = p[1] - drag.last[1];
      zones[drag.zone].polygon = zones[drag.zone].polygon.map(([x, y]) => [round(x + dx), round(y + dy)]);
      drag.last = p;
    }
    changed();
  });
  const endDrag = () => {
    drag = null;
  };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("dblclick", () => {
    if (mode === "draw" && drawing) {
      drawing.pop(); // the double click's second press added a point
      finishDrawing();
    }
  });
  canvas.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") setMode("edit");
    else if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0) deleteZone(selected);
    else if (ev.key === "Enter" && mode === "draw") finishDrawing();
  });

  // --- drawing
  const paint = () => {
    const { w, h: hh } = size();
    if (w === 0) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hh * dpr);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#1e293b";
    ctx.fillRect(0, 0, w, hh);
    if (bg) ctx.drawImage(bg, 0, 0, w, hh);
    const r = rect();
    ctx.font = `600 13px ${fontStack}`;
    const taken: Rect[] = [];
    zones.forEach((z, i) => {
      const sel = i === selected;
      polygonPath(ctx, r, z.polygon);
      ctx.fillStyle = sel ? "rgba(56, 189, 248, 0.25)" : "rgba(56, 189, 248, 0.1)";
      ctx.fill();
      ctx.lineWidth = sel ? 3 : 2;
      ctx.strokeStyle = sel ? "#7dd3fc" : "#38bdf8";
      ctx.stroke();
      for (const [x, y] of z.polygon) {
        ctx.fillStyle = sel ? "#f8fafc" : "#38bdf8";
        ctx.fillRect(x * w - 4, y * hh - 4, 8, 8);
      }
      const [lx, ly] = z.polygon[0] ?? [0, 0];
      drawLabel(ctx, taken, `${z.name}${z.capacity ? ` (${z.capacity})` : ""}`, lx * w + 6, ly * hh + 6, "#e2e8f0", r, 13);
    });
    if (drawing && drawing.length) {
      ctx.beginPath();
      drawing.forEach(([x, y], i) => (i ? ctx.lineTo(x * w, y * hh) : ctx.moveTo(x * w, y * hh)));
      ctx.strokeStyle = "#facc15";
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.stroke();
      ctx.setLineDash([]);
      drawing.forEach(([x, y], i) => {
        ctx.fillStyle = i === 0 ? "#f97316" : "#facc15";
        ctx.beginPath();
        ctx.arc(x * w, y * hh, i === 0 ? 7 : 4, 0, Math.PI * 2);
        ctx.fill();
      });
    }
    calImage.forEach(([x, y], i) => {
      ctx.strokeStyle = "#f472b6";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x * w, y * hh, 8, 0, Math.PI * 2);
      ctx.moveTo(x * w - 12, y * hh);
      ctx.lineTo(x * w + 12, y * hh);
      ctx.moveTo(x * w, y * hh - 12);
      ctx.lineTo(x * w, y * hh + 12);
      ctx.stroke();
      ctx.fillStyle = "#f472b6";
      ctx.textBaseline = "alphabetic";
      ctx.fillText(String(i + 1), x * w + 10, y * hh - 10);
    });
    paintSide();
  };

  const paintSide = () => {
    newBtn.setAttribute("aria-pressed", String(mode === "draw"));
    calBtn.setAttribute("aria-pressed", String(mode === "calibrate"));
    finishBtn.disabled = !(mode === "draw" && drawing && drawing.length >= 3);
    delBtn.disabled = selected < 0;
    // rebuild the lists only when their shape changed: keeps focus while typing
    const zoneKey = `${zones.length}|${selected}`;
    if (zoneList.dataset.key !== zoneKey) {
      zoneList.dataset.key = zoneKey;
      fill(zoneList, zones.length ? zones.map(zoneRow) : h("p", { class: "muted small" }, t("common.none")));
    }
    const calKey = String(calImage.length);
    if (calList.dataset.key !== calKey) {
      calList.dataset.key = calKey;
      fill(calList, calImage.length ? calImage.map((_, i) => calRow(i)) : h("p", { class: "muted small" }, t("common.none")));
    }
  };

  const zoneRow = (z: Zone, i: number): HTMLElement => {
    const name = h("input", { name: "name", value: z.name, "aria-label": t("zones.name"), required: true, maxlength: 64 });
    const cap = h("input", { name: "capacity", type: "number", min: 0, step: 1, value: z.capacity ?? "", placeholder: t("zones.capacity"), "aria-label": t("zones.capacity") });
    name.addEventListener("input", () => {
      z.name = name.value.trim();
      changed();
    });
    cap.addEventListener("input", () => {
      z.capacity = cap.value === "" ? undefined : Math.max(0, Math.round(Number(cap.value)));
      changed();
    });
    const row = h(
      "div",
      { class: `zone-row${i === selected ? " selected" : ""}`, "data-test": "zone-row", "data-zone": z.name },
      name,
      cap,
      h("button", { class: "btn btn-ghost btn-icon", type: "button", title: t("zones.delete"), "aria-label": t("zones.delete"), onclick: () => deleteZone(i) }, "✕"),
    );
    row.addEventListener("focusin", () => {
      if (selected !== i) {
        selected = i;
        paint();
      }
    });
    return row;
  };

  const calRow = (i: number): HTMLElement => {
    const gx = h("input", { type: "number", step: "0.01", value: calGround[i][0], "aria-label": "x (m)" });
    const gy = h("input", { type: "number", step: "0.01", value: calGround[i][1], "aria-label": "y (m)" });
    const set = () => {
      calGround[i] = [Number(gx.value) || 0, Number(gy.value) || 0];
      changed();
    };
    gx.addEventListener("input", set);
    gy.addEventListener("input", set);
    return h("div", { class: "cal-row" }, h("span", {}, t("zones.point", { n: i + 1 })), h("span", { class: "muted small" }, t("zones.ground")), gx, gy);
  };

  // --- load and save
  const adopt = (set: ZoneSet) => {
    zones = (set.zones ?? []).map((z) => ({ name: z.name, polygon: z.polygon.map(([x, y]) => [x, y] as Point), capacity: z.capacity || undefined }));
    calImage = set.calibration?.image?.map(([x, y]) => [x, y] as Point) ?? [];
    calGround = set.calibration?.ground?.map(([x, y]) => [x, y] as Point) ?? [];
    selected = -1;
    zoneList.dataset.key = "";
    calList.dataset.key = "";
  };

  const save = async () => {
    if (calImage.length > 0 && calImage.length < 4) {
      setStatus(t("common.error", { msg: "calibration needs 4 points" }), "error");
      return;
    }
    saveBtn.disabled = true;
    setStatus(t("zones.saving"), "saving");
    try {
      const body = {
        zones: zones.map((z) => ({ name: z.name, polygon: z.polygon, ...(z.capacity ? { capacity: z.capacity } : {}) })),
        calibration: calImage.length === 4 ? { image: calImage, ground: calGround } : null,
      };
      const res = await put<ZoneSet>(`/api/v1/cameras/${enc(camera)}/zones`, body);
      if (destroyed) return;
      adopt(res);
      paint();
      setStatus([t("zones.saved"), res.applied].filter(Boolean).join(" — "), "saved");
    } catch (err) {
      setStatus(isMissingRoute(err) ? describe(err, "PUT /api/v1/cameras/…/zones") : err instanceof Error ? err.message : String(err), "error");
    } finally {
      saveBtn.disabled = false;
    }
  };

  const resize = new ResizeObserver(() => paint());
  resize.observe(canvas);
  const setAspect = (a: number) => {
    aspect = a > 0 && Number.isFinite(a) ? a : 16 / 9;
    canvas.style.aspectRatio = String(aspect);
  };
  setAspect(aspect);
  setStatus(t("common.loading"), "idle");

  get<ZoneSet>(`/api/v1/cameras/${enc(camera)}/zones`)
    .then((set) => {
      if (destroyed) return;
      adopt(set);
      setStatus(set.source ? t("zones.source", { source: set.source }) : "", "idle");
      paint();
    })
    .catch((err: unknown) => {
      if (destroyed) return;
      fill(msg, notice(describe(err, "/api/v1/cameras/…/zones")));
      setStatus("", "idle");
    });
  blobURL(`/api/v1/cameras/${enc(camera)}/snapshot`)
    .then((url) => {
      if (destroyed) return URL.revokeObjectURL(url);
      bgURL = url;
      const img = new Image();
      img.onload = () => {
        bg = img;
        setAspect(img.naturalWidth / img.naturalHeight);
        paint();
      };
      img.src = url;
    })
    .catch(() => {
      if (!destroyed) msg.append(notice(t("zones.noSnapshot"), "info"));
    });

  return () => {
    destroyed = true;
    resize.disconnect();
    if (bgURL) URL.revokeObjectURL(bgURL);
  };
}
