// #/guard: a phone page for guards: big cards for the alerts of their
// posts, diversion instructions in large text, one tap to acknowledge.

import * as store from "../alertstore";
import { adviceText, alertNumbers } from "../components/alertlist";
import { fill, h, notice } from "../dom";
import { fmtTime, pick, t, type Key } from "../i18n";
import { canAck, session } from "../session";
import type { Alert } from "../types";

export function renderGuard(root: HTMLElement): () => void {
  const s = session();
  const posts = s?.posts?.length ? s.posts.join("、") : t("guard.allPosts");
  const list = h("div", { class: "guard-list" });
  const error = h("div", {});
  fill(
    root,
    h(
      "div",
      { class: "page guard-page" },
      h("h1", { class: "page-title" }, t("guard.title")),
      h("p", { class: "muted" }, t("guard.posts", { posts })),
      error,
      list,
    ),
  );

  const paint = () => {
    const alerts = store.list();
    fill(error, store.lastError() ? notice(t("common.error", { msg: store.lastError() })) : null);
    fill(list, alerts.length ? alerts.map((a) => card(a)) : h("p", { class: "guard-empty" }, store.isLoaded() ? t("guard.empty") : t("common.loading")));
  };

  const card = (a: Alert): HTMLElement => {
    const ack = h(
      "button",
      { class: "btn btn-primary guard-ack", type: "button", "data-test": "guard-ack", disabled: a.state !== "open" || !canAck() },
      a.state === "open" ? t("guard.ack") : t("guard.acked"),
    );
    const err = h("p", { class: "form-error", role: "alert", hidden: true });
    ack.addEventListener("click", async () => {
      ack.disabled = true;
      try {
        await store.acknowledge(a.id, "");
      } catch (e) {
        err.textContent = e instanceof Error ? e.message : String(e);
        err.hidden = false;
        ack.disabled = false;
      }
    });
    const advice = a.advice?.length ? a.advice.map((d) => h("p", {}, adviceText(d))) : [h("p", {}, pick(a.message, a.message_en))];
    return h(
      "article",
      {
        class: `guard-card level-${a.level} state-${a.state}${store.isFresh(a.id) ? " fresh" : ""}`,
        "data-test": "guard-alert",
        "data-alert-id": a.id,
        "data-target": a.target,
        "data-level": a.level,
        "data-state": a.state,
      },
      h("header", {}, h("span", { class: `badge level-${a.level}` }, t(`level.${a.level}` as Key)), h("span", { class: "muted" }, fmtTime(a.opened_at))),
      h("h2", { class: "guard-title" }, a.title || a.target),
      h("p", { class: "guard-numbers" }, alertNumbers(a)),
      h("div", { class: "guard-advice", "data-test": "guard-advice" }, advice),
      a.advice?.length ? h("p", { class: "muted" }, pick(a.message, a.message_en)) : null,
      err,
      ack,
    );
  };

  const offChange = store.onChange(paint);
  const offNew = store.onNew(() => navigator.vibrate?.([400, 150, 400, 150, 400]));
  paint();
  return () => {
    offChange();
    offNew();
  };
}
