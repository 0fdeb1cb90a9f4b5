// Comfort grade words and colours: 1 (comfortable, green) .. 5 (crowded,
// red); 0 is unknown (grey).

import { t, type Key } from "../i18n";
import type { Comfort } from "../types";

export function gradeOf(c: Comfort | undefined, known: boolean): number {
  if (!known || !c) return 0;
  return Math.max(0, Math.min(5, Math.round(c.grade)));
}

export function comfortName(grade: number): string {
  return t(`comfort.${grade}` as Key);
}
