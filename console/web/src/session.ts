// Who is signed in, and what each role may open.

import { ApiError, call, get, post, setCsrf } from "./api";
import type { Role, Session, TotpEnrollment } from "./types";

let current: Session | null = null;

export function session(): Session | null {
  return current;
}

function adopt(s: Session | null): Session | null {
  current = s;
  if (s) {
    setCsrf(s.csrf);
    // the console is open only once the password need not change and a
    // second factor the role needs is set up
    if (limited(s)) delete document.body.dataset.userRole;
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

/** The session must set up a TOTP second factor before anything else. */
export function needsTotp(s: Session | null = current): boolean {
  return Boolean(s && s.totp_required && !s.totp);
}

/** The session may use only the session routes (a password to change, a second factor to set up). */
export function limited(s: Session | null = current): boolean {
  return Boolean(s && (s.must_change || needsTotp(s)));
}

/**
 * Logs in. A user with TOTP on gets a 401 ApiError whose data.second_factor
 * is "totp" until the call carries their app's code.
 */
export async function login(username: string, password: string, code?: string): Promise<Session> {
  const body: Record<string, string> = { username, password };
  if (code) body.code = code;
  const s = await call<Session>("POST", "/api/v1/session", body, { quiet401: true });
  adopt(s);
  return s;
}

/** Tells whether err is the login's "second factor required" answer. */
export function wantsSecondFactor(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401 && err.data.second_factor === "totp";
}

/** Starts TOTP set-up: a new secret, shown once, pending until confirmed. */
export function startTotp(): Promise<TotpEnrollment> {
  return post<TotpEnrollment>("/api/v1/session/totp", {}, { quiet401: true });
}

/** Turns the pending TOTP secret on with a code of the app; the session is read again. */
export async function confirmTotp(code: string): Promise<Session | null> {
  await post("/api/v1/session/totp/confirm", { code }, { quiet401: true });
  return loadSession();
}

/** Turns TOTP off, proven with a current code; the session is read again. */
export async function removeTotp(code: string): Promise<Session | null> {
  await call("DELETE", "/api/v1/session/totp", { code }, { quiet401: true });
  return loadSession();
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

export type Page = "wall" | "alerts" | "areas" | "planner" | "zones" | "guard" | "admin" | "account";

const access: Record<Page, Role[]> = {
  wall: ["admin", "operator", "planner", "viewer"],
  alerts: ["admin", "operator", "guard", "planner", "viewer"],
  areas: ["admin", "operator", "guard", "planner", "viewer"],
  planner: ["admin", "operator", "planner"],
  zones: ["admin"],
  guard: ["admin", "operator", "guard"],
  admin: ["admin"],
  account: ["admin", "operator", "guard", "planner", "viewer"],
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
