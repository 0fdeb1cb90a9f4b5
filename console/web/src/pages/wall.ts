// The live wall: a 1/4/9/16 grid of WHEP video tiles with zone overlays,
// live counts, a density heat layer, camera health, and the alerts panel.

import { enc, get } from "../api";
import { loadCameras } from "../cameras";
import { alertList } from "../components/alertlist";
import { drawOverlay } from "../components/overlay";
import { fill, h, notice } from "../dom";
import { describe } from "../errors";
import { t, type Key } from "../i18n";
import { icon } from "../icons";
import * as live from "../live";
import type { Camera, CameraState, HeatmapGrid, TargetStatus } from "../types";
import { WhepPlayer, type PlayerState } from "../whep";

const gridSizes = [1, 4, 9, 16] as const;
type GridSize = (typeof gridSizes)[number];
const gridKey = "flowwatch.grid";
const heatEvery = 2000;

export function healthLabel(status: string): string {
  const known = ["live", "connecting", "stalled", "retrying", "unauthorized", "stopped"];
  return known.includes(status) ? t(`cam.${status}` as Key) : status ? status : t("cam.offline");
}

class Tile {
  readonly el: HTMLElement;
  private readonly video = h("video", { muted: true, autoplay: true, playsinline: true, disablepictureinpicture: true });
  private readonly canvas = h("canvas", { class: "overlay", "aria-hidden": "true" });
  private readonly health = h("span", { class: "health", "data-test": "tile-health" });
  private readonly msg = h("div", { class: "tile-msg" });
  private readonly note = h("div", { class: "tile-note", hidden: true });
  private readonly heatBtn: HTMLButtonElement;
  private readonly player: WhepPlayer;
  private readonly status = new Map<string, TargetStatus>();
  private readonly resize: ResizeObserver;
  private heat: HeatmapGrid | null = null;
  private heatTimer = 0;
  private heatAbort: AbortController | null = null;
  private cameraStatus = "";

  constructor(private readonly cam: Camera) {
    this.video.muted = true; // the attribute alone does not satisfy autoplay rules
    this.heatBtn = h("button", { class: "tile-btn", type: "button", "data-test": "heat-toggle", "aria-pressed": "false", title: t("wall.heat") }, t("wall.heat"));
    this.heatBtn.addEventListener("click", () => this.toggleHeat());
    const full = h("button", { class: "tile-btn", type: "button", "data-test": "fullscreen", title: t("wall.fullscreen"), "aria-label": t("wall.fullscreen") }, icon("expand"));
    full.addEventListener("click", () => this.toggleFullscreen());
    this.el = h(
      "div",
      { class: "tile", "data-test": "tile", "data-camera": cam.name },
      this.video,
      this.canvas,
      h("div", { class: "tile-bar" }, h("span", { class: "tile-title", title: cam.name }, cam.title || cam.name), this.health, h("span", { class: "spacer" }), this.heatBtn, full),
      this.msg,
      this.note,
    );
    this.video.addEventListener("loadedmetadata", () => this.draw());
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.el);
    this.setHealth(cam.status);
    this.player = new WhepPlayer(cam.name, this.video, { onState: (s, retryIn) => this.onPlayer(s, retryIn) });
    this.player.start();
  }

  private onPlayer(state: PlayerState, retryIn?: number): void {
    this.el.dataset.video = state;
    this.msg.textContent = state === "connecting" ? t("wall.video.connecting") : state === "waiting" ? t("wall.video.retry", { s: retryIn ?? 0 }) : "";
    this.msg.hidden = state === "playing";
  }

  setHealth(status: string): void {
    const was = this.cameraStatus;
    this.cameraStatus = status;
    this.health.textContent = healthLabel(status);
    this.health.dataset.status = status || "offline";
    this.el.dataset.health = status || "offline";
    if (status === "live" && was !== "" && was !== "live") this.player.kick();
  }

  setStatus(all: TargetStatus[]): void {
    const prefix = `zone:${this.cam.name}/`;
    this.status.clear();
    for (const s of all) if (s.target.startsWith(prefix)) this.status.set(s.target.slice(prefix.length), s);
    this.draw();
  }

  private aspect(): number {
    if (this.video.videoWidth > 0) return this.video.videoWidth / this.video.videoHeight;
    if (this.cam.width > 0 && this.cam.height > 0) return this.cam.width / this.cam.height;
    return 16 / 9;
  }

  draw(): void {
    drawOverlay(this.canvas, { zones: this.cam.zones, status: this.status, heat: this.heat, aspect: this.aspect() });
  }

  private toggleHeat(): void {
    const on = this.heatTimer === 0;
    this.heatBtn.setAttribute("aria-pressed", String(on));
    this.el.classList.toggle("heat-on", on);
    if (on) {
      this.heatTimer = window.setInterval(() => void this.pollHeat(), heatEvery);
      void this.pollHeat();
    } else {
      this.stopHeat();
      this.draw();
    }
  }

  private stopHeat(): void {
    window.clearInterval(this.heatTimer);
    this.heatTimer = 0;
    this.heatAbort?.abort();
    this.heat = null;
    this.showNote("");
  }

  private showNote(text: string): void {
    this.note.textContent = text;
    this.note.hidden = text === "";
  }

  private async pollHeat(): Promise<void> {
    this.heatAbort?.abort();
    const abort = new AbortController();
    this.heatAbort = abort;
    try {
      this.heat = await get<HeatmapGrid>(`/api/v1/cameras/${enc(this.cam.name)}/density`, { signal: abort.signal });
      this.showNote("");
    } catch (err) {
      if (abort.signal.aborted) return;
      this.heat = null;
      this.showNote(describe(err, "/api/v1/cameras/…/density"));
    }
    if (this.heatTimer !== 0) this.draw();
  }

  private toggleFullscreen(): void {
    if (document.fullscreenElement === this.el) void document.exitFullscreen();
    else void this.el.requestFullscreen?.().catch(() => {});
  }

  destroy(): void {
    this.stopHeat();
    this.resize.disconnect();
    this.player.stop();
    this.el.remove();
  }
}

export function renderWall(root: HTMLElement): () => void {
  let size: GridSize = gridSizes.find((n) => String(n) === localStorage.getItem(gridKey)) ?? 4;
  let page = 0;
  let cameras: Camera[] = [];
  const tiles = new Map<string, Tile>();
  const gridEl = h("div", { class: "wall-grid" });
  const pager = h("div", { class: "pager" });
  const banner = h("div", {});
  const sizeBtns = gridSizes.map((n) =>
    h("button", { class: "btn btn-seg", type: "button", "data-test": `grid-${n}`, onclick: () => setSize(n) }, String(n)),
  );
  const alerts = alertList({ compact: true });
  // the whole wall, alert panel included, on the video wall's screen
  const wallFull = h(
    "button",
    { class: "btn btn-ghost", type: "button", "data-test": "wall-fullscreen", onclick: () => toggleWallFullscreen() },
    icon("expand"),
    ` ${t("wall.fullscreenWall")}`,
  );
  const wallEl = h(
    "div",
    { class: "wall-page" },
    h(
      "div",
      { class: "wall-main" },
      h(
        "div",
        { class: "toolbar" },
        h("span", { class: "muted" }, t("wall.grid")),
        h("div", { class: "seg", role: "group" }, sizeBtns),
        pager,
        wallFull,
      ),
      banner,
      gridEl,
    ),
    h("aside", { class: "wall-side" }, h("h2", { class: "panel-title" }, t("wall.alerts")), alerts.el),
  );
  const toggleWallFullscreen = () => {
    if (document.fullscreenElement === wallEl) void document.exitFullscreen();
    else void wallEl.requestFullscreen?.().catch(() => {});
  };
  fill(root, wallEl);

  const layout = () => {
    const pages = Math.max(1, Math.ceil(cameras.length / size));
    page = Math.min(page, pages - 1);
    sizeBtns.forEach((b, i) => b.setAttribute("aria-pressed", String(gridSizes[i] === size)));
    gridEl.className = `wall-grid grid-${size}`;
    const shown = cameras.slice(page * size, page * size + size);
    const names = new Set(shown.map((c) => c.name));
    for (const [name, tile] of tiles) {
      if (!names.has(name)) {
        tile.destroy();
        tiles.delete(name);
      }
    }
    shown.forEach((cam, i) => {
      let tile = tiles.get(cam.name);
      if (!tile) {
        tile = new Tile(cam);
        tiles.set(cam.name, tile);
        tile.setStatus(live.latestStatus());
        applyCameras(live.latestCameras());
      }
      if (gridEl.children[i] !== tile.el) gridEl.insertBefore(tile.el, gridEl.children[i] ?? null);
    });
    for (let i = shown.length; i < size && cameras.length > 0; i++) {
      const blank = gridEl.children[i];
      if (!blank) gridEl.append(h("div", { class: "tile tile-empty" }));
    }
    while (gridEl.children.length > Math.max(size, shown.length)) gridEl.lastElementChild?.remove();
    fill(
      pager,
      pages > 1
        ? [
            h("button", { class: "btn btn-ghost", type: "button", disabled: page === 0, onclick: () => go(-1) }, `‹ ${t("wall.prev")}`),
            h("span", { class: "muted" }, t("wall.page", { page: page + 1, pages })),
            h("button", { class: "btn btn-ghost", type: "button", disabled: page >= pages - 1, onclick: () => go(1) }, `${t("wall.next")} ›`),
          ]
        : null,
    );
  };
  const setSize = (n: GridSize) => {
    size = n;
    localStorage.setItem(gridKey, String(n));
    layout();
  };
  const go = (d: number) => {
    page += d;
    layout();
  };
  const applyCameras = (states: CameraState[]) => {
    for (const [name, tile] of tiles) {
      const main = states.find((s) => s.camera === name && s.stream === "main") ?? states.find((s) => s.camera === name);
      if (main) tile.setHealth(main.status);
    }
  };

  const stops = [
    live.on("status", (all) => tiles.forEach((tile) => tile.setStatus(all))),
    live.on("cameras", applyCameras),
  ];
  const onFullscreen = () => tiles.forEach((tile) => tile.draw());
  document.addEventListener("fullscreenchange", onFullscreen);
  let destroyed = false;
  layout();
  fill(gridEl, h("p", { class: "muted" }, t("common.loading")));
  loadCameras()
    .then((list) => {
      if (destroyed) return;
      cameras = list.cameras;
      fill(gridEl);
      fill(banner, list.fallback ? notice(t("wall.camerasFallback"), "info") : null, cameras.length === 0 ? notice(t("wall.noCameras"), "info") : null);
      layout();
    })
    .catch((err: unknown) => {
      if (!destroyed) fill(gridEl, notice(describe(err, "/api/v1/cameras")));
    });

  return () => {
    destroyed = true;
    stops.forEach((fn) => fn());
    document.removeEventListener("fullscreenchange", onFullscreen);
    tiles.forEach((tile) => tile.destroy());
    alerts.destroy();
  };
}
