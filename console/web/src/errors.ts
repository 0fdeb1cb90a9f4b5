// Turns a failed call into words for the page.

import { ApiError, isMissingRoute } from "./api";
import { t } from "./i18n";

export function describe(err: unknown, path: string): string {
  if (isMissingRoute(err)) return t("common.missingApi", { path });
  return t("common.error", { msg: err instanceof Error ? err.message : String(err) });
}

/** A number field of an answer, or fallback when it has none. */
function num(data: Record<string, unknown>, key: string, fallback: number): number {
  const v = data[key];
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

/**
 * The password policy's refusal of a new password (a 400 whose JSON names
 * the rule; console/password.go writePolicyError) in the user's language,
 * or null when err is no such refusal. A rule this app does not know is
 * given in the server's own words.
 */
export function passwordRefusal(err: unknown): string | null {
  if (!(err instanceof ApiError) || err.status !== 400 || typeof err.data.rule !== "string") return null;
  const d = err.data;
  switch (d.rule) {
    case "encoding":
      return t("pwRule.encoding");
    case "length":
      if (typeof d.max_bytes === "number") return t("pwRule.tooLong", { max: num(d, "max_bytes", 256) });
      return t("pwRule.tooShort", { min: num(d, "min_length", 12) });
    case "character classes":
      return t("pwRule.classes", { min: num(d, "min_classes", 3), found: num(d, "classes", 0) });
    case "user name":
      return t("pwRule.username");
    case "history":
      return t("pwRule.history", { count: num(d, "history", 5) });
    case "unchanged":
      return t("pwRule.unchanged");
    default:
      return err.message;
  }
}
