// #/alerts: every open and acknowledged alert, with filters and actions.

import { alertList } from "../components/alertlist";
import { fill, h } from "../dom";
import { t } from "../i18n";

export function renderAlerts(root: HTMLElement): () => void {
  const list = alertList({ compact: false });
  fill(root, h("div", { class: "page page-narrow" }, h("h1", { class: "page-title" }, t("alerts.title")), list.el));
  return list.destroy;
}
