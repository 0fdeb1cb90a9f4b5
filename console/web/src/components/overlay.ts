// Draws zone polygons with live counts, and the density heat layer, over a
// video tile. Coordinates are normalized to the picture, which the video
// element letterboxes (object-fit: contain) inside the tile.

import { fmtCount } from "../i18n";
import type { HeatmapGrid, Point, TargetStatus, Zone } from "../types";

export const levelColors: Record<string, string> = {
  "": "#38bdf8",
  info: "#38bdf8",
  yellow: "#facc15",
  orange: "#fb923c",
  red: "#ef4444",
};

export interface OverlayInput {
  zones: Zone[];
  status: Map<string, TargetStatus>; // by zone name
  heat: HeatmapGrid | null;
  /** picture width over height; 16:9 until the video says otherwise */
  aspect: number;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const fontStack = `system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif`;

const overlaps = (a: Rect, b: Rect) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Draws text on a dark box near (x, y), kept inside bounds and moved down
 * past the labels already drawn (zones often share a corner).
 */
export function drawLabel(ctx: CanvasRenderingContext2D, taken: Rect[], text: string, x: number, y: number, color: string, bounds: Rect, size: number): void {
  const box: Rect = { x: 0, y: 0, w: ctx.measureText(text).width + 10, h: size + 6 };
  box.x = Math.min(Math.max(x, bounds.x), bounds.x + bounds.w - box.w);
  box.y = Math.min(Math.max(y, bounds.y), bounds.y + bounds.h - box.h);
  for (let i = 0; i < 12 && taken.some((r) => overlaps(r, box)); i++) box.y += box.h + 2;
  taken.push(box);
  ctx.fillStyle = "rgba(8, 12, 18, 0.75)";
  ctx.fillRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = color;
  ctx.textBaseline = "top";
  ctx.fillText(text, box.x + 5, box.y + 3);
}

/** Where a picture of the given aspect sits inside a box (object-fit: contain). */
export function containRect(boxW: number, boxH: number, aspect: number): Rect {
  if (boxW / boxH > aspect) {
    const w = boxH * aspect;
    return { x: (boxW - w) / 2, y: 0, w, h: boxH };
  }
  const h = boxW / aspect;
  return { x: 0, y: (boxH - h) / 2, w: boxW, h };
}

/** Sizes the canvas backing store to its CSS box; returns the 2D context in CSS pixels. */
export function fitCanvas(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } | null {
  const ctx = canvas.getContext("2d");
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!ctx || w === 0 || h === 0) return null;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

export function heatColor(v: number): string {
  // v in 0..1: transparent blue → yellow → red
  const hue = 220 - 220 * Math.min(1, v);
  return `hsla(${hue}, 95%, 55%, ${0.15 + 0.55 * Math.min(1, v)})`;
}

export function drawHeat(ctx: CanvasRenderingContext2D, r: Rect, grid: HeatmapGrid): void {
  const peak = Math.max(grid.max, 1e-6);
  const cw = r.w / grid.cols;
  const ch = r.h / grid.rows;
  for (let row = 0; row < grid.rows; row++) {
    for (let col = 0; col < grid.cols; col++) {
      // square root: a few dense cells should not wash out the rest
      const v = Math.sqrt((grid.data[row * grid.cols + col] ?? 0) / peak);
      if (v < 0.04) continue;
      ctx.fillStyle = heatColor(v);
      ctx.fillRect(r.x + col * cw, r.y + row * ch, Math.ceil(cw), Math.ceil(ch));
    }
  }
}

export function polygonPath(ctx: CanvasRenderingContext2D, r: Rect, poly: Point[]): void {
  ctx.beginPath();
  poly.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(r.x + x * r.w, r.y + y * r.h) : ctx.lineTo(r.x + x * r.w, r.y + y * r.h)));
  ctx.closePath();
}

export function drawOverlay(canvas: HTMLCanvasElement, input: OverlayInput): void {
  const fit = fitCanvas(canvas);
  if (!fit) return;
  const { ctx, w, h } = fit;
  const r = containRect(w, h, input.aspect);
  if (input.heat && input.heat.cols > 0 && input.heat.rows > 0) drawHeat(ctx, r, input.heat);
  const font = Math.max(11, Math.min(18, r.w / 40));
  ctx.font = `600 ${font}px ${fontStack}`;
  const taken: Rect[] = [];
  for (const z of input.zones) {
    if (z.polygon.length < 3) continue;
    const st = input.status.get(z.name);
    const color = levelColors[st?.level ?? ""] ?? levelColors[""];
    polygonPath(ctx, r, z.polygon);
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    ctx.setLineDash(st && !st.known ? [6, 4] : []);
    ctx.stroke();
    ctx.setLineDash([]);
    // label at the top-most vertex, kept inside the picture
    const top = z.polygon.reduce((a, b) => (b[1] < a[1] || (b[1] === a[1] && b[0] < a[0]) ? b : a));
    // zones no rule watches have no live count: their name alone
    const count = st ? ` ${st.known ? fmtCount(st.count) : "?"}${st.capacity ? `/${st.capacity}` : ""}` : "";
    drawLabel(ctx, taken, z.name + count, r.x + top[0] * r.w + 2, r.y + top[1] * r.h + 2, color, r, font);
  }
}
