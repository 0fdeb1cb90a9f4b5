// The alert list shared by the wall's side panel and the alerts page:
// filters, mute switch, and per alert acknowledge / hand over.

import * as store from "../alertstore";
import { get } from "../api";
import { fill, h, notice } from "../dom";
import { fmtCount, fmtTime, pick, t, type Key } from "../i18n";
import { icon } from "../icons";
import { canAck, canHandOver } from "../session";
import { isMuted, onMuteChange, setMuted } from "../sound";
import type { Alert, Diversion, TargetStatus } from "../types";

interface FormState {
  kind: "ack" | "handover";
  note: string;
  to: string;
  error: string;
}

const levels = ["red", "orange", "yellow", "info"] as const;

export function adviceText(d: Diversion): string {
  return t("alerts.adviceItem", {
    title: d.title || d.area,
    route: d.route || "—",
    min: d.walk_minutes ? Math.round(d.walk_minutes) : "—",
    room: d.room,
  });
}

export function alertNumbers(a: Alert): string {
  if (a.capacity) {
    return t("alerts.count", { count: fmtCount(a.count), capacity: a.capacity, pct: Math.round((a.ratio ?? a.count / a.capacity) * 100) });
  }
  return t("alerts.countOnly", { count: fmtCount(a.count) });
}

/** The areas an alert belongs to: its target when an area, and its posts. */
export function alertAreas(a: Alert): string[] {
  const out = new Set(a.posts ?? []);
  if (a.target.startsWith("area:")) out.add(a.target.slice(5));
  return [...out];
}

export function muteButton(): { el: HTMLButtonElement; destroy: () => void } {
  const el = h("button", { class: "btn btn-ghost", type: "button", "data-test": "mute" });
  const paint = () => {
    fill(el, icon(isMuted() ? "bellOff" : "bell"), isMuted() ? t("alerts.unmute") : t("alerts.mute"));
    el.setAttribute("aria-pressed", String(isMuted()));
    el.dataset.muted = String(isMuted());
  };
  el.addEventListener("click", () => setMuted(!isMuted()));
  paint();
  return { el, destroy: onMuteChange(paint) };
}

export function alertList(opts: { compact: boolean }): { el: HTMLElement; destroy: () => void } {
  const forms = new Map<number, FormState>();
  const items = new Map<number, { el: HTMLElement; ver: string }>();
  const areaSel = h("select", { "data-test": "filter-area", "aria-label": t("alerts.filterArea") });
  const levelSel = h(
    "select",
    { "data-test": "filter-level", "aria-label": t("alerts.filterLevel") },
    h("option", { value: "" }, `${t("alerts.filterLevel")}: ${t("common.all")}`),
    levels.map((l) => h("option", { value: l }, t(`level.${l}` as Key))),
  );
  const areaTitles = new Map<string, string>();
  const mute = muteButton();
  const listEl = h("div", { class: "alert-list", "aria-live": "polite" });
  const el = h(
    "section",
    { class: `alert-panel${opts.compact ? " compact" : ""}` },
    h("div", { class: "toolbar" }, areaSel, levelSel, h("span", { class: "spacer" }), mute.el),
    listEl,
  );

  const fillAreas = () => {
    const keep = areaSel.value;
    const names = new Set(areaTitles.keys());
    store.list().forEach((a) => alertAreas(a).forEach((n) => names.add(n)));
    fill(
      areaSel,
      h("option", { value: "" }, `${t("alerts.filterArea")}: ${t("common.all")}`),
      [...names].sort().map((n) => h("option", { value: n }, areaTitles.get(n) ?? n)),
    );
    areaSel.value = names.has(keep) ? keep : "";
  };

  const render = () => {
    fillAreas();
    const area = areaSel.value;
    const level = levelSel.value;
    const shown = store.list().filter((a) => (!area || alertAreas(a).includes(area)) && (!level || a.level === level));
    const keep = new Set<number>();
    const nodes: Node[] = [];
    for (const a of shown) {
      keep.add(a.id);
      const form = forms.get(a.id);
      const ver = `${a.updated_at}|${a.state}|${a.level}|${store.isFresh(a.id)}|${form ? form.kind + form.error : ""}`;
      let item = items.get(a.id);
      if (!item || item.ver !== ver) {
        item = { el: renderAlert(a), ver };
        items.set(a.id, item);
      }
      nodes.push(item.el);
    }
    for (const id of items.keys()) if (!keep.has(id)) items.delete(id);
    if (nodes.length === 0) {
      const err = store.lastError();
      nodes.push(err ? notice(t("common.error", { msg: err })) : h("p", { class: "empty" }, store.isLoaded() ? t("alerts.empty") : t("common.loading")));
    }
    // reorder without recreating what is unchanged (keeps focus in forms)
    nodes.forEach((n, i) => {
      if (listEl.childNodes[i] !== n) listEl.insertBefore(n, listEl.childNodes[i] ?? null);
    });
    while (listEl.childNodes.length > nodes.length) listEl.lastChild?.remove();
  };

  const renderAlert = (a: Alert): HTMLElement => {
    const form = forms.get(a.id);
    const actions = h("div", { class: "alert-actions" });
    if (!form) {
      if (canAck() && a.state === "open") {
        actions.append(
          h("button", { class: "btn btn-primary", type: "button", "data-test": "alert-ack", onclick: () => openForm(a.id, "ack") }, t("alerts.ack")),
        );
      }
      if (canHandOver()) {
        actions.append(
          h("button", { class: "btn", type: "button", "data-test": "alert-handover", onclick: () => openForm(a.id, "handover") }, t("alerts.handover")),
        );
      }
    }
    return h(
      "article",
      {
        class: `alert level-${a.level} state-${a.state}${store.isFresh(a.id) ? " fresh" : ""}`,
        "data-test": "alert",
        "data-alert-id": a.id,
        "data-target": a.target,
        "data-level": a.level,
        "data-state": a.state,
      },
      h(
        "header",
        { class: "alert-head" },
        h("span", { class: `badge level-${a.level}` }, t(`level.${a.level}` as Key)),
        h("strong", { class: "alert-title" }, a.title || a.target),
        h("span", { class: `state state-${a.state}` }, t(`state.${a.state}` as Key)),
      ),
      h("p", { class: "alert-numbers" }, alertNumbers(a), " · ", t("alerts.opened", { time: fmtTime(a.opened_at, true) })),
      h("p", { class: "alert-message" }, pick(a.message, a.message_en)),
      a.advice?.length
        ? h("ul", { class: "advice", "aria-label": t("alerts.advice") }, a.advice.map((d) => h("li", {}, adviceText(d))))
        : null,
      a.acked_by ? h("p", { class: "muted small" }, t("alerts.ackedBy", { by: a.acked_by, time: fmtTime(a.acked_at) }), a.ack_note ? ` — ${a.ack_note}` : "") : null,
      a.owner ? h("p", { class: "muted small" }, t("alerts.owner", { owner: a.owner })) : null,
      form ? renderForm(a, form) : actions,
    );
  };

  const renderForm = (a: Alert, f: FormState): HTMLElement => {
    const note = h("textarea", { "data-test": "ack-note", rows: 2, placeholder: t("alerts.ackNote"), maxlength: 2000 });
    note.value = f.note;
    note.addEventListener("input", () => (f.note = note.value));
    const to = h("input", { "data-test": "handover-to", placeholder: t("alerts.handoverTo"), autocomplete: "off" });
    to.value = f.to;
    to.addEventListener("input", () => (f.to = to.value));
    const confirm = h("button", { class: "btn btn-primary", type: "submit", "data-test": f.kind === "ack" ? "ack-confirm" : "handover-confirm" }, t("common.confirm"));
    const formEl = h(
      "form",
      { class: "alert-form" },
      f.kind === "handover" ? to : null,
      note,
      f.error ? h("p", { class: "form-error", role: "alert" }, f.error) : null,
      h("div", { class: "alert-actions" }, confirm, h("button", { class: "btn btn-ghost", type: "button", onclick: () => closeForm(a.id) }, t("common.cancel"))),
    );
    formEl.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      confirm.disabled = true;
      try {
        if (f.kind === "ack") await store.acknowledge(a.id, f.note.trim());
        else await store.handOver(a.id, f.to.trim(), f.note.trim());
        forms.delete(a.id);
        render();
      } catch (err) {
        f.error = err instanceof Error ? err.message : String(err);
        render();
      }
    });
    queueMicrotask(() => (f.kind === "handover" ? to : note).focus());
    return formEl;
  };

  const openForm = (id: number, kind: FormState["kind"]) => {
    forms.set(id, { kind, note: "", to: "", error: "" });
    render();
  };
  const closeForm = (id: number) => {
    forms.delete(id);
    render();
  };

  areaSel.addEventListener("change", render);
  levelSel.addEventListener("change", render);
  get<{ targets: TargetStatus[] }>("/api/v1/areas")
    .then((res) => {
      for (const s of res.targets ?? []) if (s.target.startsWith("area:")) areaTitles.set(s.target.slice(5), s.title || s.target.slice(5));
      render();
    })
    .catch(() => {
      // the filter then offers the areas named by the alerts themselves
    });
  const off = store.onChange(render);
  render();
  return {
    el,
    destroy: () => {
      off();
      mute.destroy();
    },
  };
}
