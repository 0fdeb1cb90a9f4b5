// #/public and /public: the visitors' comfort page. No login; large type;
// refreshes every 5 s and whenever the page becomes visible again.

import { get } from "../api";
import { comfortName, gradeOf } from "../components/comfort";
import { fill, h, notice } from "../dom";
import { fmtCount, fmtTime, lang, setLang, t } from "../i18n";
import type { PublicArea } from "../types";

const every = 5000;

export function renderPublic(root: HTMLElement): () => void {
  document.body.classList.add("public");
  const grid = h("div", { class: "public-grid" }, h("p", { class: "muted" }, t("common.loading")));
  const updated = h("p", { class: "public-updated muted" });
  const langBtn = h("button", { class: "btn btn-ghost", type: "button", "data-test": "lang", title: t("lang.switchTitle") }, t("lang.switch"));
  langBtn.addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
  fill(
    root,
    h(
      "div",
      { class: "public-page" },
      h("header", { class: "public-head" }, h("div", {}, h("h1", {}, t("public.title")), h("p", { class: "muted" }, t("public.subtitle"))), langBtn),
      grid,
      updated,
    ),
  );

  let abort: AbortController | null = null;
  const refresh = async () => {
    abort?.abort();
    const a = new AbortController();
    abort = a;
    try {
      const res = await get<{ updated: string; areas: PublicArea[] | null }>("/api/v1/public/comfort", { quiet401: true, signal: a.signal });
      const areas = res.areas ?? [];
      fill(grid, areas.length ? areas.map(card) : h("p", { class: "empty" }, t("public.empty")));
      updated.textContent = t("common.updated", { time: fmtTime(res.updated) });
    } catch (err) {
      if (!a.signal.aborted) fill(updated, notice(t("common.error", { msg: err instanceof Error ? err.message : String(err) })));
    }
  };
  const onVisible = () => {
    if (document.visibilityState === "visible") void refresh();
  };
  document.addEventListener("visibilitychange", onVisible);
  const timer = window.setInterval(() => {
    if (document.visibilityState === "visible") void refresh();
  }, every);
  void refresh();
  return () => {
    abort?.abort();
    window.clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
    document.body.classList.remove("public");
  };
}

function card(a: PublicArea): HTMLElement {
  const grade = gradeOf(a.comfort, a.known);
  return h(
    "article",
    { class: `public-card grade-${grade}`, "data-test": "public-area", "data-area": a.area, "data-grade": grade },
    h("h2", {}, a.title || a.area),
    h("p", { class: `public-grade grade-${grade}` }, comfortName(grade)),
    a.known
      ? h("p", { class: "public-figure" }, h("span", { class: "muted" }, t("public.visitors")), h("strong", {}, fmtCount(a.visitors ?? 0)), h("span", { class: "muted" }, ` / ${a.capacity}`))
      : h("p", { class: "public-figure muted" }, t("public.unknown")),
  );
}
