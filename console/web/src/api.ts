// JSON calls to the console: the session cookie rides along, every
// state-changing call carries the CSRF token, and a 401 sends the user to
// the login page.

const csrfKey = "flowwatch.csrf";
let csrf = sessionStorage.getItem(csrfKey) ?? "";
let onUnauthorized: () => void = () => {};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The answer's JSON object, when it was one (e.g. {"error", "second_factor"}). */
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function setCsrf(token: string | undefined): void {
  csrf = token ?? "";
  if (csrf) sessionStorage.setItem(csrfKey, csrf);
  else sessionStorage.removeItem(csrfKey);
}

export function csrfHeader(): Record<string, string> {
  return csrf ? { "X-CSRF-Token": csrf } : {};
}

/** Sets what happens when the server answers 401 to a signed-in call. */
export function handleUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export interface CallOptions {
  /** Leave a 401 to the caller instead of going to the login page. */
  quiet401?: boolean;
  signal?: AbortSignal;
}

export async function request(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, csrfHeader());
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: opts.signal });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, err instanceof Error ? err.message : String(err));
  }
  if (res.ok) return res;
  if (res.status === 401 && !opts.quiet401) onUnauthorized();
  throw await apiError(res);
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const data = parsed as Record<string, unknown>;
      if (typeof data.error === "string" && data.error) return new ApiError(res.status, data.error, data);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return new ApiError(res.status, text.trim() || `${res.status} ${res.statusText}`);
}

export async function call<T>(method: string, path: string, body?: unknown, opts?: CallOptions): Promise<T> {
  const res = await request(method, path, body, opts);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string, opts?: CallOptions) => call<T>("GET", path, undefined, opts);
export const post = <T>(path: string, body?: unknown, opts?: CallOptions) => call<T>("POST", path, body ?? {}, opts);
export const put = <T>(path: string, body: unknown) => call<T>("PUT", path, body);
export const del = <T>(path: string, body?: unknown, opts?: CallOptions) => call<T>("DELETE", path, body, opts);

/** Fetches an image (or any binary) with the session and returns an object URL; the caller revokes it. */
export async function blobURL(path: string, signal?: AbortSignal): Promise<string> {
  const res = await fetch(path, { credentials: "same-origin", signal });
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw await apiError(res);
  }
  return URL.createObjectURL(await res.blob());
}

/**
 * Downloads path with the session (a GET) and saves it through a blob link,
 * under the server's Content-Disposition file name or fallbackName.
 */
export async function download(path: string, fallbackName: string, signal?: AbortSignal): Promise<string> {
  let res: Response;
  try {
    res = await fetch(path, { credentials: "same-origin", signal });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, err instanceof Error ? err.message : String(err));
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw await apiError(res);
  }
  const name = fileName(res.headers.get("Content-Disposition")) || fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // give the browser a moment to start the save before the blob goes
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}

/** The file name of a Content-Disposition header (filename*= first, then filename=). */
function fileName(cd: string | null): string {
  if (!cd) return "";
  const star = /filename\*\s*=\s*(?:UTF-8'[^']*')?([^;]+)/i.exec(cd);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ""));
    } catch {
      // fall through to filename=
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(cd);
  return (plain?.[2] ?? plain?.[1] ?? "").trim().replace(/[\\/]/g, "_");
}

export function query(params: Record<string, string | string[] | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;

/** The server has no such route (an older server, or a feature not built yet). */
export function isMissingRoute(err: unknown): boolean {
  return err instanceof ApiError && ((err.status === 404 && /^no such path/.test(err.message)) || err.status === 405);
}
