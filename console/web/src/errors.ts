// Turns a failed call into words for the page.

import { isMissingRoute } from "./api";
import { t } from "./i18n";

export function describe(err: unknown, path: string): string {
  if (isMissingRoute(err)) return t("common.missingApi", { path });
  return t("common.error", { msg: err instanceof Error ? err.message : String(err) });
}
