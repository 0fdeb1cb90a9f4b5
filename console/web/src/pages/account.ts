// #/account: any signed-in user's own password, TOTP second factor and API
// tokens.

import { ApiError, del, enc, get, post, query } from "../api";
import { cleanCode, codeInput, copyButton, totpSetup } from "../components/totp";
import { fill, h, notice, scrollTable } from "../dom";
import { describe, passwordRefusal } from "../errors";
import { fmtTime, t, type Key } from "../i18n";
import { changePassword, limited, removeTotp, session } from "../session";
import type { ApiToken, Role, Session } from "../types";

const allRoles: Role[] = ["admin", "operator", "guard", "planner", "viewer"];

/** The roles a user of role may give their API tokens (console/tokens.go roleCovers). */
function tokenRoles(role: Role): Role[] {
  if (role === "admin") return allRoles;
  if (role === "operator") return ["operator", "viewer"];
  return [role];
}

export function renderAccount(root: HTMLElement): () => void {
  const s = session();
  if (!s) return () => {};
  let gone = false;
  const pwCard = h("section", { class: "card", "data-test": "account-password" });
  const totpCard = h("section", { class: "card", "data-test": "account-totp" });
  const tokenCard = h("section", { class: "card account-wide", "data-test": "account-tokens" });
  fill(
    root,
    h(
      "div",
      { class: "page page-narrow account-page" },
      h("h1", { class: "page-title" }, t("account.title")),
      h("p", { class: "muted" }, t("account.user", { user: s.user, role: t(`role.${s.role}` as Key) })),
      h("div", { class: "account-grid" }, pwCard, totpCard, tokenCard),
    ),
  );
  passwordCard(pwCard);
  paintTotp(totpCard, s, () => gone);
  tokensCard(tokenCard, s, () => gone);
  return () => {
    gone = true;
  };
}

function passwordCard(card: HTMLElement): void {
  const old = h("input", { type: "password", autocomplete: "current-password", required: true, "data-test": "account-pw-old" });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true, "data-test": "account-pw-new" });
  const again = h("input", { type: "password", autocomplete: "new-password", required: true, "data-test": "account-pw-repeat" });
  const msg = h("div", { "aria-live": "polite", "data-test": "account-pw-msg" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", "data-test": "account-pw-submit" }, t("pw.submit"));
  const form = h(
    "form",
    { novalidate: true },
    h("label", { class: "field" }, h("span", {}, t("pw.old")), old),
    h("label", { class: "field" }, h("span", {}, t("pw.new")), next),
    h("label", { class: "field" }, h("span", {}, t("account.repeat")), again),
    msg,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fill(msg);
    if (!old.value || !next.value) return;
    if (next.value !== again.value) {
      fill(msg, notice(t("account.mismatch")));
      again.select();
      return;
    }
    submit.disabled = true;
    try {
      await changePassword(old.value, next.value);
      form.reset();
      fill(msg, notice(t("account.pwChanged"), "info"));
    } catch (err) {
      let text: string;
      const refusal = passwordRefusal(err);
      if (refusal !== null) {
        text = refusal;
        next.select();
      } else if (err instanceof ApiError && err.status === 401) text = t("account.wrongPassword");
      else if (err instanceof ApiError && (err.status === 400 || err.status === 423 || err.status === 429)) text = err.message;
      else text = describe(err, "PUT /api/v1/session/password");
      fill(msg, notice(text));
    } finally {
      submit.disabled = false;
    }
  });
  fill(card, h("h2", {}, t("account.password")), form);
}

function paintTotp(card: HTMLElement, s: Session, gone: () => boolean, said?: HTMLElement): void {
  const on = Boolean(s.totp);
  const msg = h("div", { "aria-live": "polite" }, said ?? null);
  const body = h("div", {});
  fill(
    card,
    h("h2", {}, t("account.totp")),
    h("p", { class: "totp-status", "data-test": "totp-status", "data-on": String(on) }, h("span", { class: `tag ${on ? "tag-ok" : ""}` }, on ? t("admin.totpOn") : t("admin.totpOff")), " ", on ? t("account.totpOn") : t("account.totpOff")),
    msg,
    body,
  );
  const again = (fresh: Session | null, note?: HTMLElement) => {
    if (gone()) return;
    if (!fresh || limited(fresh)) {
      // the role needs a second factor: the set-up comes first now
      location.hash = "#/login";
      return;
    }
    paintTotp(card, fresh, gone, note);
  };
  if (!on) {
    const enable = h("button", { class: "btn btn-primary", type: "button", "data-test": "totp-enable" }, t("account.totpEnable"));
    enable.addEventListener("click", () => {
      fill(msg);
      totpSetup(body, (fresh) => again(fresh, notice(t("totp.enabled"), "info")));
    });
    fill(body, enable);
    return;
  }
  const code = codeInput("totp-remove-code", t("account.totpRemoveCode"));
  const remove = h("button", { class: "btn btn-danger", type: "submit", "data-test": "totp-remove" }, t("account.totpRemove"));
  const form = h("form", { class: "inline-row", novalidate: true }, h("label", { class: "field" }, h("span", {}, t("account.totpRemoveCode")), code), h("div", { class: "field field-end" }, remove));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fill(msg);
    const c = cleanCode(code.value);
    if (!/^\d{6}$/.test(c)) {
      fill(msg, notice(t("totp.wrongCode")));
      code.select();
      return;
    }
    remove.disabled = true;
    try {
      again(await removeTotp(c), notice(t("account.totpRemoved"), "info"));
    } catch (err) {
      const text = err instanceof ApiError && err.status === 401 ? t("login.wrongCode") : err instanceof ApiError && err.status === 423 ? err.message : describe(err, "DELETE /api/v1/session/totp");
      fill(msg, notice(text));
      code.select();
    } finally {
      remove.disabled = false;
    }
  });
  fill(body, form);
}

function tokensCard(card: HTMLElement, s: Session, gone: () => boolean): void {
  const msg = h("div", { "aria-live": "polite" });
  const say = (node: HTMLElement | null) => fill(msg, node);
  const tbody = h("tbody", {});
  const name = h("input", { name: "name", required: true, maxlength: 64, autocomplete: "off", "data-test": "token-name" });
  const roles = tokenRoles(s.role);
  const role = h(
    "select",
    { "data-test": "token-role", disabled: roles.length < 2 },
    roles.map((r) => h("option", { value: r, selected: r === s.role }, t(`role.${r}` as Key))),
  );
  const scopes = h("input", { name: "scopes", autocomplete: "off", placeholder: "read:/api/v1/areas, /api/v1/alerts", "data-test": "token-scopes" });
  const create = h("button", { class: "btn btn-primary", type: "submit", "data-test": "token-create" }, t("account.tokenCreate"));
  const form = h(
    "form",
    { class: "token-form", novalidate: true },
    h("label", { class: "field" }, h("span", {}, t("account.tokenName")), name),
    h("label", { class: "field" }, h("span", {}, t("account.tokenRole")), role),
    h("label", { class: "field token-scopes" }, h("span", {}, t("account.tokenScopes")), scopes),
    h("div", { class: "field field-end" }, create),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(null);
    if (!name.value.trim()) {
      name.focus();
      return;
    }
    create.disabled = true;
    try {
      const res = await post<{ token: string; api_token: ApiToken }>("/api/v1/tokens", {
        name: name.value.trim(),
        role: role.value,
        scopes: scopes.value
          .split(/[,，\s]+/)
          .map((x) => x.trim())
          .filter(Boolean),
      });
      say(
        h(
          "div",
          { class: "notice notice-info", role: "status" },
          h("p", {}, t("account.tokenSecret")),
          h("div", { class: "totp-secret-row" }, h("code", { class: "secret token-secret", "data-test": "token-secret" }, res.token), copyButton(() => res.token, "token-copy")),
        ),
      );
      form.reset();
      role.value = s.role;
      await load();
    } catch (err) {
      say(notice(describe(err, "POST /api/v1/tokens")));
    } finally {
      create.disabled = false;
    }
  });

  const row = (tk: ApiToken): HTMLElement => {
    const revoked = Boolean(tk.revoked_at);
    let revoke: HTMLElement | null = null;
    if (!revoked) {
      const b = h("button", { class: "btn btn-danger", type: "button", "data-test": "token-revoke" }, t("account.tokenRevoke"));
      b.addEventListener("click", async () => {
        if (!confirm(t("account.tokenConfirmRevoke", { name: tk.name }))) return;
        b.disabled = true;
        try {
          await del(`/api/v1/tokens/${enc(String(tk.id))}`);
          await load();
        } catch (err) {
          say(notice(describe(err, "DELETE /api/v1/tokens/…")));
          b.disabled = false;
        }
      });
      revoke = b;
    }
    return h(
      "tr",
      { "data-test": "token-row", "data-token-id": tk.id, "data-revoked": String(revoked), class: revoked ? "row-dim" : null },
      h("td", {}, h("strong", {}, tk.name), revoked ? h("span", { class: "tag tag-bad" }, t("account.tokenRevoked")) : null),
      h("td", {}, t(`role.${tk.role}` as Key)),
      h("td", { class: "small" }, tk.scopes?.length ? tk.scopes.map((x) => h("code", { class: "scope" }, x)) : h("span", { class: "muted" }, t("account.tokenScopesAll"))),
      h("td", { class: "muted small nowrap" }, fmtTime(tk.created_at, true)),
      h("td", { class: "muted small nowrap" }, tk.last_used ? fmtTime(tk.last_used, true) : t("account.never")),
      h("td", {}, revoke),
    );
  };

  const load = async () => {
    try {
      const res = await get<{ tokens: ApiToken[] | null }>(`/api/v1/tokens${query({ user: s.user })}`);
      if (gone()) return;
      const list = res.tokens ?? [];
      fill(tbody, list.length ? list.map(row) : h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("account.tokenNone"))));
    } catch (err) {
      say(notice(describe(err, "GET /api/v1/tokens")));
    }
  };

  fill(
    card,
    h("h2", {}, t("account.tokens")),
    h("p", { class: "muted small" }, t("account.tokensHelp")),
    form,
    msg,
    scrollTable([t("admin.name"), t("account.tokenRole"), t("account.tokenScopesHead"), t("account.created"), t("account.lastUsed"), t("admin.actions")], tbody),
  );
  void load();
}
