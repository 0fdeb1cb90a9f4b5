// Setting up a TOTP second factor: a new secret from the server (shown this
// once, as a QR code of the otpauth URI to scan, as grouped text and as the
// URI itself), then a code of the app to turn it on. Used by the forced
// set-up after login and by the account page.

import { ApiError } from "../api";
import { h, fill, notice } from "../dom";
import { describe } from "../errors";
import { t } from "../i18n";
import { confirmTotp, startTotp } from "../session";
import type { Session, TotpEnrollment } from "../types";
import { drawQr, qrMatrix } from "./qr";

/** The base32 secret in groups of four, for typing into an app. */
export function groupSecret(secret: string): string {
  return (secret.replace(/\s+/g, "").match(/.{1,4}/g) ?? []).join(" ");
}

/** A button that copies text() to the clipboard and says so. */
export function copyButton(text: () => string, test: string): HTMLButtonElement {
  const label = t("totp.copy");
  const b = h("button", { class: "btn btn-ghost", type: "button", "data-test": test }, label);
  let timer = 0;
  b.addEventListener("click", async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text());
      ok = true;
    } catch {
      ok = false;
    }
    b.textContent = ok ? t("totp.copied") : t("totp.copyFailed");
    clearTimeout(timer);
    timer = window.setTimeout(() => (b.textContent = label), 2000);
  });
  return b;
}

/** Six digits, however the user typed them (spaces, a dash). */
export function cleanCode(raw: string): string {
  return raw.replace(/[\s-]/g, "");
}

/** An input for a 6-digit code. */
export function codeInput(test: string, label: string): HTMLInputElement {
  return h("input", {
    "data-test": test,
    name: "code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    pattern: "[0-9 ]{6,7}",
    maxlength: 7,
    required: true,
    "aria-label": label,
    class: "code-input",
  });
}

/** A canvas that shows the QR code of uri once the encoder has loaded, or says it could not. */
function qrCode(uri: string): HTMLElement {
  const canvas = h("canvas", { class: "totp-qr", role: "img", "aria-label": t("totp.qr"), "data-test": "totp-qr", width: 0, height: 0 });
  const box = h("div", { class: "totp-qr-box" }, canvas);
  qrMatrix(uri)
    .then((m) => drawQr(canvas, m))
    .catch(() => fill(box, h("p", { class: "muted small", "data-test": "totp-qr-failed" }, t("totp.qrFailed"))));
  return box;
}

/**
 * Renders the set-up into root: it asks the server for a secret at once,
 * and calls done with the session read again once the code confirms it.
 */
export function totpSetup(root: HTMLElement, done: (s: Session | null) => void): void {
  fill(root, h("p", { class: "muted" }, t("common.loading")));
  startTotp()
    .then((e) => paint(root, e, done))
    .catch((err: unknown) => fill(root, notice(describe(err, "POST /api/v1/session/totp"))));
}

function paint(root: HTMLElement, e: TotpEnrollment, done: (s: Session | null) => void): void {
  const code = codeInput("totp-code", t("totp.code"));
  const error = h("p", { class: "form-error", role: "alert", "data-test": "totp-error", hidden: true });
  const confirm = h("button", { class: "btn btn-primary", type: "submit", "data-test": "totp-confirm" }, t("totp.confirm"));
  const form = h(
    "form",
    { class: "totp-confirm", novalidate: true },
    h("label", { class: "field" }, h("span", {}, t("totp.step2")), code),
    error,
    confirm,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const c = cleanCode(code.value);
    if (!/^\d{6}$/.test(c)) {
      error.textContent = t("totp.wrongCode");
      error.hidden = false;
      code.select();
      return;
    }
    confirm.disabled = true;
    try {
      done(await confirmTotp(c));
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 400 ? t("totp.wrongCode") : describe(err, "POST /api/v1/session/totp/confirm");
      error.hidden = false;
      code.select();
    } finally {
      confirm.disabled = false;
    }
  });
  fill(
    root,
    h(
      "div",
      { class: "totp-setup", "data-test": "totp-setup" },
      h("p", {}, t("totp.step1")),
      h(
        "div",
        { class: "totp-qr-row" },
        qrCode(e.uri),
        h(
          "div",
          { class: "totp-qr-side" },
          h(
            "div",
            { class: "totp-secret-row" },
            h("code", { class: "secret totp-secret", "data-test": "totp-secret", "aria-label": t("totp.secret") }, groupSecret(e.secret)),
            copyButton(() => e.secret, "totp-copy-secret"),
          ),
          h("p", { class: "muted small" }, t("totp.details", { alg: e.algorithm ?? "SHA1", digits: e.digits ?? 6, period: e.period ?? 30 })),
        ),
      ),
      h("p", {}, t("totp.uri")),
      h("div", { class: "totp-secret-row" }, h("code", { class: "totp-uri", "data-test": "totp-uri" }, e.uri), copyButton(() => e.uri, "totp-copy-uri")),
      h("p", { class: "muted small" }, t("totp.once")),
      form,
    ),
  );
  code.focus();
}
