// Who is signed in, and what each role may open.

import { ApiError, call, get, setCsrf } from "./api";
import type { Role, Session } from "./types";

let current: Session | null = null;

export function session(): Session | null {
  return current;
}

function adopt(s: Session | null): Session | null {
  current = s;
  if (s) {
    setCsrf(s.csrf);
    // the console is open only once the password need not change first
    if (s.must_change) delete document.body.dataset.userRole;
    else document.body.dataset.userRole = s.role;
  } else {
    setCsrf(undefined);
    delete document.body.dataset.userRole;
  }
  return s;
}

/** Asks the server who we are; null when not signed in. */
export async function loadSession(): Promise<Session | null> {
  try {
    return adopt(await get<Session>("/api/v1/session", { quiet401: true }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return adopt(null);
    throw err;
  }
}

export async function login(username: string, password: string): Promise<Session> {
  const s = await call<Session>("POST", "/api/v1/session", { username, password }, { quiet401: true });
  adopt(s);
  return s;
}

export async function logout(): Promise<void> {
  try {
    await call("DELETE", "/api/v1/session", undefined, { quiet401: true });
  } finally {
    adopt(null);
  }
}

/** Changes the password; the server answers with a new session. */
export async function changePassword(password: string, newPassword: string): Promise<Session> {
  const s = await call<Session>("PUT", "/api/v1/session/password", { password, new_password: newPassword }, { quiet401: true });
  adopt(s);
  return s;
}

export function forget(): void {
  adopt(null);
}

export type Page = "wall" | "alerts" | "areas" | "planner" | "zones" | "guard" | "admin";

const access: Record<Page, Role[]> = {
  wall: ["admin", "operator", "planner", "viewer"],
  alerts: ["admin", "operator", "guard", "planner", "viewer"],
  areas: ["admin", "operator", "guard", "planner", "viewer"],
  planner: ["admin", "operator", "planner"],
  zones: ["admin"],
  guard: ["admin", "operator", "guard"],
  admin: ["admin"],
};

export function may(page: Page, role: Role | undefined = current?.role): boolean {
  return role !== undefined && access[page].includes(role);
}

/** May the role acknowledge alerts, hand them over, run backtests? */
export const canAck = (role = current?.role) => role === "admin" || role === "operator" || role === "guard";
export const canHandOver = (role = current?.role) => role === "admin" || role === "operator";
export const canBacktest = (role = current?.role) => role === "admin" || role === "planner";

export function homeFor(role: Role): string {
  switch (role) {
    case "guard":
      return "#/guard";
    case "planner":
      return "#/planner";
    default:
      return "#/wall";
  }
}
