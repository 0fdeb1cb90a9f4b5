// Sign-in (with a TOTP code when the account has one), the password change
// a new or reset account must make first, and the second factor set-up a
// role may require.

import { ApiError } from "../api";
import { cleanCode, codeInput, totpSetup } from "../components/totp";
import { h, fill } from "../dom";
import { passwordRefusal } from "../errors";
import { t, type Key } from "../i18n";
import { changePassword, login, logout, needsTotp, session, wantsSecondFactor } from "../session";
import type { Session } from "../types";

export function renderLogin(root: HTMLElement, done: (s: Session) => void): void {
  const s = session();
  if (s) {
    next(root, s, done);
    return;
  }
  const user = h("input", { "data-test": "login-user", name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { "data-test": "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = codeInput("login-code", t("login.code"));
  const codeBox = h(
    "div",
    { class: "login-code", hidden: true },
    h("p", { class: "small muted" }, t("login.codeHint")),
    h("label", { class: "field" }, h("span", {}, t("login.code")), code),
  );
  const error = h("p", { class: "form-error", "data-test": "login-error", role: "alert", hidden: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-test": "login-submit" }, t("login.submit"));
  const form = h(
    "form",
    { class: "card login-card", novalidate: true },
    h("h1", { class: "login-brand" }, t("app.name")),
    h("p", { class: "muted" }, t("app.tagline")),
    h("label", { class: "field" }, h("span", {}, t("login.user")), user),
    h("label", { class: "field" }, h("span", {}, t("login.pass")), pass),
    codeBox,
    error,
    submit,
    h("a", { class: "login-public", href: "#/public" }, t("login.public")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const withCode = !codeBox.hidden;
    try {
      const s = await login(user.value.trim(), pass.value, withCode ? cleanCode(code.value) : undefined);
      next(root, s, done);
    } catch (err) {
      if (wantsSecondFactor(err)) {
        // the password was right: ask for the app's code
        const first = codeBox.hidden;
        codeBox.hidden = false;
        if (!first) {
          error.textContent = t("login.wrongCode");
          error.hidden = false;
        }
        code.value = "";
        code.focus();
        return;
      }
      error.textContent = loginMessage(err);
      error.hidden = false;
      if (withCode && isWrongCode(err)) {
        code.value = "";
        code.focus();
      } else pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  fill(root, h("div", { class: "login-page" }, form));
  user.focus();
}

/** Where a fresh session goes: a password to change, a second factor to set up, or in. */
function next(root: HTMLElement, s: Session, done: (s: Session) => void): void {
  if (s.must_change) renderPasswordChange(root, s, done);
  else if (needsTotp(s)) renderTotpSetup(root, s, done);
  else done(s);
}

function isWrongCode(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401 && /^wrong code/.test(err.message);
}

function loginMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (isWrongCode(err)) return t("login.wrongCode");
    if (err.status === 401) return t("login.wrong");
    if (err.status === 423) return t("login.locked");
    if (err.status === 429) return t("login.limited");
    return t("common.error", { msg: err.message });
  }
  return t("common.error", { msg: String(err) });
}

/** Why the forced password change failed: the policy's refusal in the user's language, a wrong current password, or the server's words. */
function passwordChangeMessage(err: unknown): string {
  const refusal = passwordRefusal(err);
  if (refusal !== null) return refusal;
  if (err instanceof ApiError) {
    if (err.status === 401) return t("account.wrongPassword");
    if (err.status === 423) return t("login.locked");
    if (err.status === 429) return t("login.limited");
    return err.message;
  }
  return String(err);
}

function renderPasswordChange(root: HTMLElement, s: Session, done: (s: Session) => void): void {
  const old = h("input", { "data-test": "pw-old", type: "password", autocomplete: "current-password", required: true });
  const newPw = h("input", { "data-test": "pw-new", type: "password", autocomplete: "new-password", required: true, minlength: 12 });
  const error = h("p", { class: "form-error", role: "alert", "data-test": "pw-error", hidden: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-test": "pw-submit" }, t("pw.submit"));
  const form = h(
    "form",
    { class: "card login-card", novalidate: true },
    h("h1", { class: "login-brand" }, t("app.name")),
    h("p", {}, t("pw.title"), " — ", h("strong", {}, s.user)),
    h("label", { class: "field" }, h("span", {}, t("pw.old")), old),
    h("label", { class: "field" }, h("span", {}, t("pw.new")), newPw),
    error,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      next(root, await changePassword(old.value, newPw.value), done);
    } catch (err) {
      error.textContent = passwordChangeMessage(err);
      error.hidden = false;
      if (err instanceof ApiError && err.status === 401) old.select();
      else newPw.select();
    } finally {
      submit.disabled = false;
    }
  });
  fill(root, h("div", { class: "login-page" }, form));
  old.focus();
}

/** The second factor the role requires, before anything else. */
function renderTotpSetup(root: HTMLElement, s: Session, done: (s: Session) => void): void {
  const body = h("div", {});
  const out = h("button", { class: "btn btn-ghost", type: "button", "data-test": "logout" }, t("nav.logout"));
  out.addEventListener("click", async () => {
    await logout().catch(() => {});
    renderLogin(root, done);
  });
  fill(
    root,
    h(
      "div",
      { class: "login-page" },
      h(
        "section",
        { class: "card login-card totp-card", "data-test": "totp-enroll" },
        h("h1", { class: "login-brand" }, t("totp.title")),
        h("p", {}, t("totp.required", { role: t(`role.${s.role}` as Key) }), " — ", h("strong", {}, s.user)),
        body,
        h("div", { class: "totp-foot" }, out),
      ),
    ),
  );
  totpSetup(body, (fresh) => {
    if (fresh) next(root, fresh, done);
    else renderLogin(root, done);
  });
}
