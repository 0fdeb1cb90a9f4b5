// Sign-in, and the password change a new or reset account must make first.

import { ApiError } from "../api";
import { h, fill } from "../dom";
import { t } from "../i18n";
import { changePassword, login, session } from "../session";
import type { Session } from "../types";

export function renderLogin(root: HTMLElement, done: (s: Session) => void): void {
  const s = session();
  if (s?.must_change) {
    renderPasswordChange(root, s, done);
    return;
  }
  const user = h("input", { "data-test": "login-user", name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { "data-test": "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "form-error", "data-test": "login-error", role: "alert", hidden: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-test": "login-submit" }, t("login.submit"));
  const form = h(
    "form",
    { class: "card login-card", novalidate: true },
    h("h1", { class: "login-brand" }, t("app.name")),
    h("p", { class: "muted" }, t("app.tagline")),
    h("label", { class: "field" }, h("span", {}, t("login.user")), user),
    h("label", { class: "field" }, h("span", {}, t("login.pass")), pass),
    error,
    submit,
    h("a", { class: "login-public", href: "#/public" }, t("login.public")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const s = await login(user.value.trim(), pass.value);
      if (s.must_change) renderPasswordChange(root, s, done);
      else done(s);
    } catch (err) {
      error.textContent = loginMessage(err);
      error.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  fill(root, h("div", { class: "login-page" }, form));
  user.focus();
}

function loginMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return t("login.wrong");
    if (err.status === 423) return t("login.locked");
    if (err.status === 429) return t("login.limited");
    return t("common.error", { msg: err.message });
  }
  return t("common.error", { msg: String(err) });
}

function renderPasswordChange(root: HTMLElement, s: Session, done: (s: Session) => void): void {
  const old = h("input", { "data-test": "pw-old", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { "data-test": "pw-new", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const error = h("p", { class: "form-error", role: "alert", "data-test": "pw-error", hidden: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-test": "pw-submit" }, t("pw.submit"));
  const form = h(
    "form",
    { class: "card login-card", novalidate: true },
    h("h1", { class: "login-brand" }, t("app.name")),
    h("p", {}, t("pw.title"), " — ", h("strong", {}, s.user)),
    h("label", { class: "field" }, h("span", {}, t("pw.old")), old),
    h("label", { class: "field" }, h("span", {}, t("pw.new")), next),
    error,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      done(await changePassword(old.value, next.value));
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  fill(root, h("div", { class: "login-page" }, form));
  old.focus();
}
