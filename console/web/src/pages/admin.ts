// #/admin/cameras, #/admin/users, #/admin/audit.

import { blobURL, del, download, enc, get, post, put, query } from "../api";
import { loadCameras } from "../cameras";
import { fill, h, notice, scrollTable } from "../dom";
import { describe, passwordRefusal } from "../errors";
import { fmtTime, t, type Key } from "../i18n";
import { icon } from "../icons";
import * as live from "../live";
import { session } from "../session";
import type { AuditEntry, Camera, CameraTest, Role, StoredSnapshot, User } from "../types";
import { healthLabel } from "./wall";

const roles: Role[] = ["admin", "operator", "guard", "planner", "viewer"];
const tabs = ["cameras", "users", "audit"] as const;
type Tab = (typeof tabs)[number];

export function renderAdmin(root: HTMLElement, sub: string): () => void {
  const tab: Tab = (tabs as readonly string[]).includes(sub) ? (sub as Tab) : "cameras";
  const body = h("div", {});
  fill(
    root,
    h(
      "div",
      { class: "page" },
      h(
        "nav",
        { class: "tabs", "aria-label": t("nav.admin") },
        tabs.map((k) => h("a", { href: `#/admin/${k}`, class: "tab", "aria-current": k === tab ? "page" : null, "data-test": `admin-tab-${k}` }, t(`admin.${k}` as Key))),
      ),
      body,
    ),
  );
  if (tab === "users") return usersTab(body);
  if (tab === "audit") return auditTab(body);
  return camerasTab(body);
}

function camerasTab(root: HTMLElement): () => void {
  const tbody = h("tbody", {});
  const msg = h("div", {});
  const rows = new Map<string, { status: HTMLElement; result: HTMLElement }>();
  const stops: (() => void)[] = [];
  fill(
    root,
    h(
      "section",
      { class: "card", "data-test": "admin-cameras" },
      msg,
      h("p", { class: "muted small" }, t("admin.snapHelp")),
      h(
        "table",
        { class: "table" },
        h("thead", {}, h("tr", {}, [t("admin.name"), t("admin.title"), t("admin.status"), t("admin.resolution"), t("admin.actions")].map((c) => h("th", {}, c)))),
        tbody,
      ),
    ),
  );
  const row = (c: Camera): HTMLElement[] => {
    const status = h("span", { class: "health", "data-status": c.status || "offline" }, healthLabel(c.status));
    const result = h("span", { class: "small", role: "status" });
    const test = h("button", { class: "btn", type: "button", "data-test": "camera-test" }, t("admin.test"));
    test.addEventListener("click", async () => {
      test.disabled = true;
      result.className = "small muted";
      result.textContent = t("admin.testing");
      try {
        const r = await post<CameraTest>(`/api/v1/cameras/${enc(c.name)}/test`);
        result.className = `small ${r.ok ? "ok" : "bad"}`;
        result.textContent = r.ok ? t("admin.testOk", { codec: r.codec ?? "", w: r.width ?? 0, h: r.height ?? 0, ms: Math.round(r.elapsed_ms ?? 0) }) : t("admin.testFail", { err: r.error ?? "" });
      } catch (err) {
        result.className = "small bad";
        result.textContent = describe(err, "POST /api/v1/cameras/…/test");
      } finally {
        test.disabled = false;
      }
    });
    rows.set(c.name, { status, result });
    const snaps = snapshotPanel(c, result);
    stops.push(snaps.destroy);
    return [
      h(
        "tr",
        { "data-test": "camera-row", "data-camera": c.name },
        h("td", {}, h("code", {}, c.name)),
        h("td", {}, c.title),
        h("td", {}, status),
        h("td", {}, c.width ? `${c.width}×${c.height}` : "—"),
        h(
          "td",
          {},
          h(
            "div",
            { class: "actions" },
            test,
            h("a", { class: "btn btn-ghost", href: `#/zones/${enc(c.name)}`, "data-test": "camera-zones" }, t("admin.editZones")),
            snaps.controls,
            result,
          ),
        ),
      ),
      snaps.row,
    ];
  };
  const off = live.on("cameras", (states) => {
    for (const [name, r] of rows) {
      const s = states.find((x) => x.camera === name && x.stream === "main");
      if (!s) continue;
      r.status.textContent = healthLabel(s.status);
      r.status.dataset.status = s.status;
      r.status.title = s.last_error ?? "";
    }
  });
  loadCameras()
    .then((list) => {
      if (list.fallback) fill(msg, notice(t("common.missingApi", { path: "/api/v1/cameras" }), "info"));
      fill(tbody, ...list.cameras.map(row));
    })
    .catch((err: unknown) => fill(msg, notice(describe(err, "/api/v1/cameras"))));
  return () => {
    off();
    stops.forEach((f) => f());
  };
}

/**
 * A camera's stored snapshots: the store button with its blur box (for the
 * camera's row), and a row under it listing them, with a preview.
 */
function snapshotPanel(c: Camera, result: HTMLElement): { controls: HTMLElement; row: HTMLElement; destroy: () => void } {
  const path = `/api/v1/cameras/${enc(c.name)}/snapshots`;
  const blur = h("input", { type: "checkbox", checked: true, "data-test": "snapshot-blur" });
  const store = h("button", { class: "btn", type: "button", "data-test": "snapshot-store" }, t("admin.snapStore"));
  const toggle = h("button", { class: "btn btn-ghost", type: "button", "data-test": "snapshot-toggle", "aria-expanded": "false" }, t("admin.snapshots"));
  const list = h("tbody", {});
  const msg = h("div", { "aria-live": "polite" });
  const preview = h("img", { class: "snapshot-preview", "data-test": "snapshot-image", alt: "", hidden: true });
  const row = h(
    "tr",
    { class: "sub-row", "data-test": "snapshot-panel", "data-camera": c.name, hidden: true },
    h(
      "td",
      { colspan: 5 },
      h(
        "div",
        { class: "snapshot-panel" },
        h("div", {}, msg, h("table", { class: "table table-compact", "data-test": "snapshot-list" }, h("thead", {}, h("tr", {}, ["#", t("admin.snapAt"), t("admin.snapBy"), t("admin.snapBlur"), t("admin.actions")].map((x) => h("th", {}, x)))), list)),
        preview,
      ),
    ),
  );
  let url = "";
  let shown = 0;
  let gone = false;
  const hidePreview = () => {
    if (url) URL.revokeObjectURL(url);
    url = "";
    shown = 0;
    preview.hidden = true;
    preview.removeAttribute("src");
  };
  const view = async (sn: StoredSnapshot, b: HTMLButtonElement) => {
    if (shown === sn.id) {
      hidePreview();
      paint();
      return;
    }
    b.disabled = true;
    try {
      const next = await blobURL(`/api/v1/snapshots/${sn.id}`);
      if (gone) {
        URL.revokeObjectURL(next);
        return;
      }
      hidePreview();
      url = next;
      shown = sn.id;
      preview.src = next;
      preview.alt = `${c.title || c.name} · ${fmtTime(sn.at, true)}`;
      preview.hidden = false;
      paint();
    } catch (err) {
      fill(msg, notice(describe(err, "GET /api/v1/snapshots/…")));
    } finally {
      b.disabled = false;
    }
  };
  let snapshots: StoredSnapshot[] = [];
  const paint = () => {
    fill(
      list,
      snapshots.length
        ? snapshots.map((sn) => {
            const v = h("button", { class: "btn btn-ghost", type: "button", "data-test": "snapshot-view", "aria-pressed": String(shown === sn.id) }, shown === sn.id ? t("admin.snapHide") : t("admin.snapView"));
            v.addEventListener("click", () => void view(sn, v));
            const d = h("button", { class: "btn btn-danger", type: "button", "data-test": "snapshot-delete" }, t("common.delete"));
            d.addEventListener("click", async () => {
              if (!confirm(t("admin.snapConfirmDelete", { id: sn.id }))) return;
              d.disabled = true;
              try {
                await del(`/api/v1/snapshots/${sn.id}`);
                if (shown === sn.id) hidePreview();
                await load();
              } catch (err) {
                fill(msg, notice(describe(err, "DELETE /api/v1/snapshots/…")));
                d.disabled = false;
              }
            });
            return h(
              "tr",
              { "data-test": "snapshot-row", "data-snapshot-id": sn.id, "data-blurred": String(sn.blurred) },
              h("td", {}, String(sn.id)),
              h("td", { class: "nowrap" }, fmtTime(sn.at, true)),
              h("td", {}, sn.by),
              h("td", {}, h("span", { class: `tag ${sn.blurred ? "tag-ok" : "tag-bad"}` }, sn.blurred ? t("admin.snapBlurred") : t("admin.snapClear"))),
              h("td", {}, h("div", { class: "actions" }, v, d)),
            );
          })
        : h("tr", {}, h("td", { colspan: 5, class: "empty" }, t("admin.snapNone"))),
    );
    toggle.textContent = snapshots.length ? `${t("admin.snapshots")} (${snapshots.length})` : t("admin.snapshots");
  };
  const load = async () => {
    try {
      const res = await get<{ snapshots: StoredSnapshot[] | null }>(path);
      if (gone) return;
      snapshots = res.snapshots ?? [];
      fill(msg);
    } catch (err) {
      snapshots = [];
      fill(msg, notice(describe(err, `GET ${path}`)));
    }
    paint();
  };
  const open = (on: boolean) => {
    row.hidden = !on;
    toggle.setAttribute("aria-expanded", String(on));
    toggle.setAttribute("aria-pressed", String(on));
    if (!on) hidePreview();
  };
  toggle.addEventListener("click", () => {
    open(row.hidden);
    if (!row.hidden) void load();
  });
  store.addEventListener("click", async () => {
    store.disabled = true;
    result.className = "small muted";
    result.textContent = t("common.loading");
    try {
      const sn = await post<StoredSnapshot>(path, { blur: blur.checked });
      result.className = "small ok";
      result.textContent = t("admin.snapStored", { id: sn.id });
      open(true);
      await load();
    } catch (err) {
      result.className = "small bad";
      result.textContent = describe(err, `POST ${path}`);
    } finally {
      store.disabled = false;
    }
  });
  const controls = h(
    "span",
    { class: "snapshot-controls" },
    h("label", { class: "inline small", title: t("admin.snapBlurTitle") }, blur, t("admin.snapBlur")),
    store,
    toggle,
  );
  // how many there are, for the toggle's label
  void load();
  return {
    controls,
    row,
    destroy: () => {
      gone = true;
      hidePreview();
    },
  };
}

function usersTab(root: HTMLElement): () => void {
  const tbody = h("tbody", {});
  const msg = h("div", { "aria-live": "polite" });
  const say = (node: HTMLElement | null) => fill(msg, node);
  const roleSelect = (value: Role) => h("select", { "aria-label": t("admin.role") }, roles.map((r) => h("option", { value: r, selected: r === value }, t(`role.${r}` as Key))));
  const splitPosts = (s: string) => s.split(/[,，\s]+/).map((p) => p.trim()).filter(Boolean);

  const newName = h("input", { name: "username", required: true, autocomplete: "off", "data-test": "user-new-name" });
  const newRole = roleSelect("viewer");
  newRole.dataset.test = "user-new-role";
  const newPosts = h("input", { name: "posts", autocomplete: "off", "data-test": "user-new-posts" });
  const newPass = h("input", { name: "password", type: "password", autocomplete: "new-password", "data-test": "user-new-password" });
  const create = h(
    "form",
    { class: "inline-form" },
    h("label", { class: "field" }, h("span", {}, t("admin.username")), newName),
    h("label", { class: "field" }, h("span", {}, t("admin.role")), newRole),
    h("label", { class: "field" }, h("span", {}, t("admin.posts")), newPosts),
    h("label", { class: "field" }, h("span", {}, t("admin.password")), newPass),
    h("div", { class: "field field-end" }, h("button", { class: "btn btn-primary", type: "submit", "data-test": "user-create" }, t("admin.create"))),
  );
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const res = await post<{ user: User; password?: string }>("/api/v1/users", {
        username: newName.value.trim(),
        role: newRole.value,
        posts: splitPosts(newPosts.value),
        ...(newPass.value ? { password: newPass.value } : {}),
      });
      say(oneTime(t("admin.created", { user: res.user.username }), res.password));
      create.reset();
      void load();
    } catch (err) {
      say(notice(passwordRefusal(err) ?? describe(err, "POST /api/v1/users")));
    }
  });

  const oneTime = (head: string, pw?: string) =>
    h("div", { class: "notice notice-info", role: "status" }, head, pw ? h("p", {}, t("admin.oneTime"), " ", h("code", { class: "secret", "data-test": "one-time-password" }, pw)) : null);

  const row = (u: User): HTMLElement => {
    const role = roleSelect(u.role);
    const posts = h("input", { value: (u.posts ?? []).join(", "), "aria-label": t("admin.posts") });
    const act = (label: string, test: string, fn: () => Promise<void>, cls = "btn btn-ghost") => {
      const b = h("button", { class: cls, type: "button", "data-test": test }, label);
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          await fn();
        } catch (err) {
          say(notice(describe(err, "/api/v1/users")));
        } finally {
          b.disabled = false;
        }
      });
      return b;
    };
    const locked = u.locked_until && new Date(u.locked_until) > new Date();
    const self = u.username === session()?.user;
    return h(
      "tr",
      { "data-test": "user-row", "data-user": u.username },
      h("td", {}, h("strong", {}, u.username), u.must_change ? h("span", { class: "tag" }, t("admin.mustChange")) : null, locked ? h("span", { class: "tag tag-bad" }, t("admin.lockedUntil", { time: fmtTime(u.locked_until, true) })) : null),
      h("td", {}, role),
      h("td", {}, posts),
      h("td", { "data-test": "user-totp", "data-on": String(Boolean(u.totp)) }, h("span", { class: `tag ${u.totp ? "tag-ok" : ""}` }, u.totp ? t("admin.totpOn") : t("admin.totpOff"))),
      h("td", { class: "muted small" }, fmtTime(u.created_at, true)),
      h(
        "td",
        {},
        h(
          "div",
          { class: "actions" },
          act(t("common.save"), "user-save", async () => {
          await put(`/api/v1/users/${enc(u.username)}`, { role: role.value, posts: splitPosts(posts.value) });
          say(notice(t("admin.updated", { user: u.username }), "info"));
          await load();
        }),
        act(t("admin.resetPw"), "user-reset", async () => {
          const res = await post<{ password: string }>(`/api/v1/users/${enc(u.username)}/password`);
          say(oneTime(u.username, res.password));
        }),
        u.totp && !self
          ? act(t("admin.resetTotp"), "user-totp-reset", async () => {
              if (!confirm(t("admin.confirmResetTotp", { user: u.username }))) return;
              const res = await post<{ removed: boolean }>(`/api/v1/users/${enc(u.username)}/totp/reset`);
              say(notice(t(res.removed ? "admin.totpReset" : "admin.totpResetNone", { user: u.username }), "info"));
              await load();
            })
          : null,
        locked
          ? act(t("admin.unlock"), "user-unlock", async () => {
              await post(`/api/v1/users/${enc(u.username)}/unlock`);
              await load();
            })
          : null,
        self
          ? null
          : act(
              t("common.delete"),
              "user-delete",
              async () => {
                if (!confirm(t("admin.confirmDelete", { user: u.username }))) return;
                await del(`/api/v1/users/${enc(u.username)}`);
                await load();
              },
              "btn btn-danger",
            ),
        ),
      ),
    );
  };

  const load = async () => {
    try {
      const res = await get<{ users: User[] | null }>("/api/v1/users");
      fill(tbody, (res.users ?? []).map(row));
    } catch (err) {
      say(notice(describe(err, "/api/v1/users")));
    }
  };

  fill(
    root,
    h(
      "section",
      { class: "card", "data-test": "admin-users" },
      create,
      msg,
      h(
        "table",
        { class: "table" },
        h("thead", {}, h("tr", {}, [t("admin.username"), t("admin.role"), t("admin.posts"), t("admin.totp"), t("admin.createdAt"), t("admin.actions")].map((c) => h("th", {}, c)))),
        tbody,
      ),
    ),
  );
  void load();
  return () => {};
}

function auditTab(root: HTMLElement): () => void {
  const day = 24 * 3600_000;
  const dateInput = (d: Date) => h("input", { type: "date", value: d.toISOString().slice(0, 10) });
  const fromIn = dateInput(new Date(Date.now() - 7 * day));
  const toIn = dateInput(new Date());
  const limitIn = h("input", { type: "number", min: 1, max: 10000, value: 500, "aria-label": t("admin.limit") });
  const filterIn = h("input", { type: "search", placeholder: t("admin.filter"), "data-test": "audit-filter" });
  const csv = h("a", { class: "btn", "data-test": "audit-export", download: "audit.csv" }, icon("download"), t("admin.exportCsv"));
  const tbody = h("tbody", {});
  const msg = h("div", {});
  let entries: AuditEntry[] = [];

  const period = () => {
    const from = new Date(`${fromIn.value}T00:00:00`);
    const to = new Date(new Date(`${toIn.value}T00:00:00`).getTime() + day);
    return { from: Number.isNaN(from.getTime()) ? undefined : from.toISOString(), to: Number.isNaN(to.getTime()) ? undefined : to.toISOString() };
  };
  const paint = () => {
    const f = filterIn.value.trim().toLowerCase();
    const shown = f ? entries.filter((e) => `${e.action} ${e.actor} ${e.target}`.toLowerCase().includes(f)) : entries;
    fill(
      tbody,
      shown.map((e) =>
        h(
          "tr",
          { "data-test": "audit-row", "data-action": e.action },
          h("td", { class: "nowrap" }, fmtTime(e.at, true)),
          h("td", {}, e.actor, h("span", { class: "muted small" }, ` ${e.role}`)),
          h("td", {}, h("code", {}, e.action)),
          h("td", {}, e.target),
          h("td", { class: "detail" }, e.detail),
          h("td", { class: "muted small" }, e.remote),
        ),
      ),
    );
  };
  const load = async () => {
    const p = period();
    csv.href = `/api/v1/audit${query({ ...p, format: "csv" })}`;
    try {
      const res = await get<{ entries: AuditEntry[] | null }>(`/api/v1/audit${query({ ...p, limit: limitIn.value })}`);
      entries = res.entries ?? [];
      fill(msg);
    } catch (err) {
      entries = [];
      fill(msg, notice(describe(err, "/api/v1/audit")));
    }
    paint();
  };
  const form = h(
    "form",
    { class: "toolbar" },
    h("label", { class: "inline" }, t("common.from"), fromIn),
    h("label", { class: "inline" }, t("common.to"), toIn),
    h("label", { class: "inline" }, t("admin.limit"), limitIn),
    h("button", { class: "btn", type: "submit" }, t("common.apply")),
    filterIn,
    h("span", { class: "spacer" }),
    csv,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void load();
  });
  filterIn.addEventListener("input", paint);
  fill(
    root,
    exportCard(),
    h(
      "section",
      { class: "card", "data-test": "admin-audit" },
      form,
      msg,
      scrollTable([t("admin.at"), t("admin.actor"), t("admin.action"), t("admin.target"), t("admin.detail"), t("admin.remote")], tbody),
    ),
  );
  void load();
  return () => {};
}

/** Everything held about a period, as a ZIP (GET /api/v1/export). */
function exportCard(): HTMLElement {
  const day = 24 * 3600_000;
  const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
  const fromIn = h("input", { type: "date", value: local(new Date(Date.now() - 7 * day)), "data-test": "export-from", "aria-label": t("common.from") });
  const toIn = h("input", { type: "date", value: local(new Date()), "data-test": "export-to", "aria-label": t("common.to") });
  const go = h("button", { class: "btn btn-primary", type: "submit", "data-test": "export-all" }, icon("download"), t("admin.exportAll"));
  const msg = h("div", { "aria-live": "polite", "data-test": "export-msg" });
  const form = h(
    "form",
    { class: "toolbar", novalidate: true },
    h("label", { class: "inline" }, t("common.from"), fromIn),
    h("label", { class: "inline" }, t("common.to"), toIn),
    go,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // whole local days: from the start of the first to the end of the last
    const from = new Date(`${fromIn.value}T00:00:00`);
    const to = new Date(new Date(`${toIn.value}T00:00:00`).getTime() + day);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) {
      fill(msg, notice(t("admin.badPeriod")));
      return;
    }
    go.disabled = true;
    fill(msg, h("p", { class: "muted" }, t("admin.exporting")));
    try {
      const name = await download(`/api/v1/export${query({ from: from.toISOString(), to: to.toISOString() })}`, `flowwatch-export-${fromIn.value}-${toIn.value}.zip`);
      fill(msg, notice(t("admin.exported", { name }), "info"));
    } catch (err) {
      fill(msg, notice(describe(err, "GET /api/v1/export")));
    } finally {
      go.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card export-card", "data-test": "admin-export" },
    h("div", { class: "card-head" }, h("h2", {}, t("admin.export"))),
    h("p", { class: "muted small" }, t("admin.exportHelp")),
    form,
    msg,
  );
}
