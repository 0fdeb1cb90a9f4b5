// The camera list, with a fallback for servers without GET /api/v1/cameras:
// the names then come from live camera states and zone targets.

import { get, isMissingRoute } from "./api";
import * as live from "./live";
import type { Camera, TargetStatus } from "./types";

export interface CameraList {
  cameras: Camera[];
  /** true when the list had to be pieced together without the cameras API */
  fallback: boolean;
}

export async function loadCameras(): Promise<CameraList> {
  try {
    const res = await get<{ cameras: Camera[] | null }>("/api/v1/cameras");
    return { cameras: (res.cameras ?? []).map((c) => ({ ...c, zones: c.zones ?? [] })), fallback: false };
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
  }
  const names = new Set<string>();
  for (const s of live.latestCameras()) if (s.stream === "main") names.add(s.camera);
  const zones = new Map<string, string[]>();
  try {
    const res = await get<{ targets: TargetStatus[] }>("/api/v1/areas");
    for (const t of res.targets ?? []) {
      const m = /^zone:([^/]+)\/(.+)$/.exec(t.target);
      if (!m) continue;
      names.add(m[1]);
      zones.set(m[1], [...(zones.get(m[1]) ?? []), m[2]]);
    }
  } catch {
    // names from the live states alone
  }
  const cameras = [...names].sort().map<Camera>((name) => ({
    name,
    title: name,
    width: 0,
    height: 0,
    status: live.latestCameras().find((s) => s.camera === name && s.stream === "main")?.status ?? "",
    zones: (zones.get(name) ?? []).map((z) => ({ name: z, polygon: [] })),
  }));
  return { cameras, fallback: true };
}
