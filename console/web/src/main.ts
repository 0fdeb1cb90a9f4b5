// The console's entry: the signed-in shell (top bar, role-based nav, live
// feed) and a small hash router.

import "./style.css";
import * as alertStore from "./alertstore";
import { handleUnauthorized } from "./api";
import { fill, h, notice } from "./dom";
import { lang, onLangChange, setLang, t, type Key } from "./i18n";
import * as live from "./live";
import { renderAccount } from "./pages/account";
import { renderAdmin } from "./pages/admin";
import { renderAlerts } from "./pages/alerts";
import { renderAreas } from "./pages/areas";
import { renderGuard } from "./pages/guard";
import { renderLogin } from "./pages/login";
import { renderPublic } from "./pages/public";
import { renderWall } from "./pages/wall";
import { renderZones } from "./pages/zones";
import { forget, homeFor, limited, loadSession, logout, may, session, type Page } from "./session";
import { beep, unlockAudio } from "./sound";
import type { Session } from "./types";

const app = document.getElementById("app") as HTMLElement;
const navPages: Page[] = ["wall", "alerts", "areas", "planner", "guard", "admin"];
let cleanup: (() => void) | void;
let sessionChecked = false;
let returnTo = "";
let liveStarted = false;

type Route = { name: string; args: string[] };

function currentRoute(): Route {
  const hash = location.hash.replace(/^#\/?/, "");
  if (!hash && location.pathname === "/public") return { name: "public", args: [] };
  const [name = "", ...args] = hash.split("/").map((p) => decodeURIComponent(p));
  return { name, args };
}

function startLive(): void {
  if (liveStarted) return;
  liveStarted = true;
  live.connect();
  alertStore.start();
}

function stopLive(): void {
  liveStarted = false;
  live.disconnect();
  alertStore.stop();
}

async function route(): Promise<void> {
  cleanup?.();
  cleanup = undefined;
  const r = currentRoute();
  document.title = r.name === "public" ? `${t("public.title")} · ${t("app.name")}` : t("app.name");
  if (r.name === "public") {
    fill(app);
    const page = h("main", { class: "public-root" });
    app.append(page);
    cleanup = renderPublic(page);
    return;
  }
  if (!sessionChecked) {
    try {
      await loadSession();
    } catch (err) {
      fill(app, h("div", { class: "login-page" }, notice(t("common.error", { msg: err instanceof Error ? err.message : String(err) }))));
      return;
    }
    sessionChecked = true;
  }
  const s = session();
  if (!s || limited(s)) {
    stopLive();
    if (r.name !== "login") {
      returnTo = location.hash;
      location.replace("#/login");
      return;
    }
    renderLogin(app, signedIn);
    return;
  }
  if (r.name === "login" || r.name === "") {
    location.replace(homeFor(s.role));
    return;
  }
  startLive();
  const frame = shell(s, r.name);
  const page = renderPage(frame.main, r, s);
  cleanup = () => {
    page?.();
    frame.destroy();
  };
}

function signedIn(s: Session): void {
  const target = returnTo && !returnTo.startsWith("#/login") ? returnTo : homeFor(s.role);
  returnTo = "";
  if (location.hash === target) void route();
  else location.hash = target;
}

function renderPage(main: HTMLElement, r: Route, s: Session): (() => void) | void {
  const page = (r.name === "zones" ? "zones" : r.name) as Page;
  const known: Record<Page, () => (() => void) | void> = {
    wall: () => renderWall(main),
    alerts: () => renderAlerts(main),
    areas: () => renderAreas(main),
    planner: () => lazy(main, () => import("./pages/planner").then((m) => m.renderPlanner)),
    zones: () => (r.args[0] ? renderZones(main, r.args[0]) : location.replace("#/admin/cameras")),
    guard: () => renderGuard(main),
    admin: () => renderAdmin(main, r.args[0] ?? "cameras"),
    account: () => renderAccount(main),
  };
  if (!(page in known)) {
    fill(main, h("div", { class: "page" }, notice(t("notfound"), "info")));
    return;
  }
  if (!may(page, s.role)) {
    fill(
      main,
      h(
        "div",
        { class: "page forbidden", "data-test": "forbidden" },
        h("h1", { class: "page-title" }, t("forbidden.title")),
        h("p", {}, t("forbidden.body", { role: t(`role.${s.role}` as Key) })),
        h("a", { class: "btn", href: homeFor(s.role) }, "←"),
      ),
    );
    return;
  }
  return known[page]();
}

/** Renders a page whose module (and its dependencies, like ECharts) loads on first use. */
function lazy(main: HTMLElement, load: () => Promise<(root: HTMLElement) => () => void>): () => void {
  let stop: (() => void) | null = null;
  let gone = false;
  fill(main, h("p", { class: "muted" }, t("common.loading")));
  load()
    .then((render) => {
      if (!gone) stop = render(main);
    })
    .catch((err: unknown) => fill(main, notice(t("common.error", { msg: err instanceof Error ? err.message : String(err) }))));
  return () => {
    gone = true;
    stop?.();
  };
}

function shell(s: Session, current: string): { main: HTMLElement; destroy: () => void } {
  const dot = h("span", { class: "live-dot", role: "status" });
  const paintDot = (ok: boolean) => {
    dot.dataset.ok = String(ok);
    dot.title = ok ? t("live.online") : t("live.offline");
    dot.setAttribute("aria-label", dot.title);
  };
  paintDot(live.isConnected());
  const offConn = live.on("connection", paintDot);
  const langBtn = h("button", { class: "btn btn-ghost", type: "button", "data-test": "lang", title: t("lang.switchTitle") }, t("lang.switch"));
  langBtn.addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
  const out = h("button", { class: "btn btn-ghost", type: "button", "data-test": "logout" }, t("nav.logout"));
  out.addEventListener("click", async () => {
    stopLive();
    await logout().catch(() => {});
    location.hash = "#/login";
  });
  const active = current === "zones" ? "admin" : current;
  const main = h("main", { class: "content", id: "content" });
  fill(
    app,
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: homeFor(s.role) }, h("span", { class: "brand-mark", "aria-hidden": "true" }), t("app.name")),
      h(
        "nav",
        { class: "nav" },
        navPages
          .filter((p) => may(p, s.role))
          .map((p) => h("a", { href: `#/${p}`, "data-test": `nav-${p}`, "aria-current": p === active ? "page" : null }, t(`nav.${p}` as Key))),
      ),
      h("span", { class: "spacer" }),
      dot,
      h(
        "a",
        { class: "who", href: "#/account", "data-test": "nav-account", title: t("nav.account"), "aria-current": current === "account" ? "page" : null },
        h("strong", {}, s.user),
        h("span", { class: "muted" }, t(`role.${s.role}` as Key)),
      ),
      langBtn,
      out,
    ),
    main,
  );
  return { main, destroy: offConn };
}

handleUnauthorized(() => {
  forget();
  stopLive();
  if (!location.hash.startsWith("#/login")) {
    returnTo = location.hash;
    location.hash = "#/login";
  }
});

alertStore.onNew((a) => beep(a.level));

unlockAudio();
onLangChange(() => void route());
window.addEventListener("hashchange", () => void route());
void route();
