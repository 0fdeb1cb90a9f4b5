// The /ws feed: one connection while signed in, reconnecting with backoff.

import type { AlertChange, CameraState, TargetStatus } from "./types";

export interface LiveEvents {
  hello: { user: string; role: string; posts: string[] | null };
  alert: AlertChange;
  status: TargetStatus[];
  cameras: CameraState[];
  resync: undefined;
  connection: boolean;
}

type Listener<K extends keyof LiveEvents> = (data: LiveEvents[K]) => void;

const listeners = new Map<keyof LiveEvents, Set<(data: never) => void>>();
let socket: WebSocket | null = null;
let wanted = false;
let retry = 0;
let retryTimer = 0;
let connected = false;
let lastStatus: TargetStatus[] = [];
let lastCameras: CameraState[] = [];

export function on<K extends keyof LiveEvents>(type: K, fn: Listener<K>): () => void {
  let set = listeners.get(type);
  if (!set) listeners.set(type, (set = new Set()));
  const entry = fn as (data: never) => void;
  set.add(entry);
  return () => set.delete(entry);
}

function emit<K extends keyof LiveEvents>(type: K, data: LiveEvents[K]): void {
  listeners.get(type)?.forEach((fn) => (fn as Listener<K>)(data));
}

export const isConnected = () => connected;
export const latestStatus = () => lastStatus;
export const latestCameras = () => lastCameras;

export function connect(): void {
  wanted = true;
  if (socket) return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    setConnected(true);
  };
  ws.onmessage = (ev) => {
    let msg: { type: keyof LiveEvents; data: unknown };
    try {
      msg = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    if (msg.type === "status") lastStatus = (msg.data as TargetStatus[]) ?? [];
    if (msg.type === "cameras") lastCameras = (msg.data as CameraState[]) ?? [];
    emit(msg.type, msg.data as never);
  };
  ws.onclose = () => {
    socket = null;
    const was = connected;
    setConnected(false);
    if (!wanted) return;
    // a reconnect may have missed alert changes: treat it like a resync
    const delay = Math.min(30_000, 1000 * 2 ** retry) * (0.75 + Math.random() * 0.5);
    retry++;
    retryTimer = window.setTimeout(() => {
      connect();
      if (was) emit("resync", undefined);
    }, delay);
  };
}

function setConnected(v: boolean): void {
  if (connected === v) return;
  connected = v;
  emit("connection", v);
}

export function disconnect(): void {
  wanted = false;
  window.clearTimeout(retryTimer);
  socket?.close();
  socket = null;
  lastStatus = [];
  lastCameras = [];
}
