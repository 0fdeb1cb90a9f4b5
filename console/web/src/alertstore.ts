// Open and acknowledged alerts, kept current from /ws "alert" messages and
// refetched on "resync" (or after the feed reconnects).

import { get, post } from "./api";
import * as live from "./live";
import type { Alert, AlertChange } from "./types";

const alerts = new Map<number, Alert>();
const fresh = new Map<number, number>(); // id -> until (ms)
const changeListeners = new Set<() => void>();
const newListeners = new Set<(a: Alert) => void>();
let stops: (() => void)[] = [];
let loadError = "";
let loaded = false;

const freshFor = 15_000;

export function onChange(fn: () => void): () => void {
  changeListeners.add(fn);
  return () => changeListeners.delete(fn);
}

/** Called once for every alert raised (or raised a level) while watching. */
export function onNew(fn: (a: Alert) => void): () => void {
  newListeners.add(fn);
  return () => newListeners.delete(fn);
}

const notify = () => changeListeners.forEach((fn) => fn());

export function list(): Alert[] {
  const rank = { red: 0, orange: 1, yellow: 2, info: 3 } as Record<string, number>;
  return [...alerts.values()].sort(
    (a, b) =>
      Number(a.state !== "open") - Number(b.state !== "open") ||
      (rank[a.level] ?? 4) - (rank[b.level] ?? 4) ||
      b.opened_at.localeCompare(a.opened_at),
  );
}

export const isFresh = (id: number) => (fresh.get(id) ?? 0) > Date.now();
export const lastError = () => loadError;
export const isLoaded = () => loaded;

export async function reload(): Promise<void> {
  try {
    const res = await get<{ alerts: Alert[] | null }>("/api/v1/alerts?state=open&state=acknowledged&limit=500");
    alerts.clear();
    for (const a of res.alerts ?? []) alerts.set(a.id, a);
    loadError = "";
  } catch (err) {
    loadError = err instanceof Error ? err.message : String(err);
  }
  loaded = true;
  notify();
}

function apply(ch: AlertChange): void {
  const a = ch.alert;
  if (a.state === "resolved") alerts.delete(a.id);
  else alerts.set(a.id, a);
  if (ch.kind === "raised" || ch.kind === "level") {
    fresh.set(a.id, Date.now() + freshFor);
    window.setTimeout(notify, freshFor + 50);
    newListeners.forEach((fn) => fn(a));
  }
  notify();
}

/** Replaces one alert with the server's answer to an action on it. */
function store(a: Alert): void {
  if (a.state === "resolved") alerts.delete(a.id);
  else alerts.set(a.id, a);
  fresh.delete(a.id);
  notify();
}

export async function acknowledge(id: number, note: string): Promise<void> {
  store((await post<{ alert: Alert }>(`/api/v1/alerts/${id}/ack`, { note })).alert);
}

export async function handOver(id: number, to: string, note: string): Promise<void> {
  store((await post<{ alert: Alert }>(`/api/v1/alerts/${id}/handover`, { to, note })).alert);
}

export function start(): void {
  stop();
  stops = [live.on("alert", apply), live.on("resync", () => void reload())];
  void reload();
}

export function stop(): void {
  stops.forEach((fn) => fn());
  stops = [];
  alerts.clear();
  fresh.clear();
  loaded = false;
}
