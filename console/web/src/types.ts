// Shapes of the console's JSON API (notes/contract.md).

export type Role = "admin" | "operator" | "guard" | "planner" | "viewer";
export type Level = "info" | "yellow" | "orange" | "red";
export type AlertState = "open" | "acknowledged" | "resolved";

export interface Session {
  user: string;
  role: Role;
  posts: string[] | null;
  csrf?: string;
  must_change: boolean;
  /** The user has a TOTP second factor on. */
  totp?: boolean;
  /** The user's role needs a second factor and they have none yet: only the session routes work. */
  totp_required?: boolean;
  kind: string;
  expires?: string;
}

export interface Comfort {
  grade: number;
  name: string;
  name_en: string;
}

export interface TargetStatus {
  target: string;
  title: string;
  known: boolean;
  count: number;
  capacity: number;
  daily_capacity?: number;
  ratio: number;
  comfort: Comfort;
  level?: Level | "";
}

export interface Diversion {
  area: string;
  title: string;
  ratio: number;
  room: number;
  route?: string;
  walk_minutes?: number;
}

export interface Alert {
  id: number;
  key: string;
  rule: string;
  target: string;
  title: string;
  level: Level;
  state: AlertState;
  count: number;
  capacity?: number;
  ratio?: number;
  message: string;
  message_en: string;
  advice?: Diversion[];
  opened_at: string;
  updated_at: string;
  acked_at?: string;
  acked_by?: string;
  ack_note?: string;
  resolved_at?: string;
  resolved_by?: string;
  escalated_at?: string;
  escalated_to?: string;
  posts?: string[];
  owner?: string;
}

export interface AlertChange {
  kind: "raised" | "level" | "acknowledged" | "escalated" | "note" | "handover" | "resolved";
  at: string;
  by: string;
  note?: string;
  alert: Alert;
}

export interface CameraState {
  camera: string;
  stream: string;
  status: string;
  since: string;
  last_error?: string;
  codec?: string;
  width?: number;
  height?: number;
}

export type Point = [number, number];

export interface Zone {
  name: string;
  polygon: Point[];
  capacity?: number;
}

export interface Camera {
  name: string;
  title: string;
  width: number;
  height: number;
  status: string;
  zones: Zone[];
  states?: CameraState[];
}

export interface Calibration {
  image: Point[];
  ground: Point[];
}

export interface ZoneSet {
  camera: string;
  zones: Zone[];
  calibration: Calibration | null;
  source?: string;
  updated_at?: string;
  updated_by?: string;
  applied?: string;
}

export interface HeatmapGrid {
  camera: string;
  cols: number;
  rows: number;
  frames: number;
  max: number;
  data: number[];
}

export interface CountPoint {
  time: string;
  count: number;
  min: number;
  max: number;
  samples: number;
}

export interface CountSeries {
  target: string;
  title: string;
  points: CountPoint[];
}

export interface BacktestResult {
  from: string;
  to: string;
  samples: number;
  alerts: Alert[] | null;
}

export interface User {
  username: string;
  role: Role;
  posts: string[] | null;
  must_change: boolean;
  totp?: boolean;
  locked_until?: string;
  created_at: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  detail: string;
  remote: string;
}

export interface PublicArea {
  area: string;
  title: string;
  known: boolean;
  visitors?: number;
  capacity: number;
  percent?: number;
  comfort: Comfort;
  daily_capacity?: number;
}

export interface CameraTest {
  ok: boolean;
  codec?: string;
  width?: number;
  height?: number;
  elapsed_ms?: number;
  error?: string;
}

export interface TotpEnrollment {
  secret: string;
  uri: string;
  algorithm?: string;
  digits?: number;
  period?: number;
}

export interface ApiToken {
  id: number;
  name: string;
  user: string;
  role: Role;
  scopes: string[] | null;
  created_at: string;
  last_used: string | null;
  revoked_at: string | null;
}

export interface StoredSnapshot {
  id: number;
  camera: string;
  at: string;
  by: string;
  blurred: boolean;
  width: number;
  height: number;
  bytes: number;
}
