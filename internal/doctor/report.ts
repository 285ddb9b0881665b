/**
 * How the doctor's results are shown: a table for people (one line per
 * check: id, verdict, reason; under a warning or a failure an indented
 * "→ what to do" line, then a summary line), and a JSON document for
 * programs (`{ checks: [...], summary: {...} }`, one object per check with
 * the same fields as `Result`).
 *
 * Secrets. Checks never put credentials in their findings; as a last guard
 * every string written here goes through the logger's secret masking
 * (`registerSecret` values, which the driver's credentials are registered
 * as when read from the environment), so a secret that slipped into an
 * error message is still not printed.
 *
 * @module
 */
import { maskSecrets } from "../log/mod.ts";
import type { Result, Verdict } from "./check.ts";

export interface Summary {
  ok: number;
  warning: number;
  failed: number;
  /** Warnings that are checks not run (a check they need did not pass). */
  skipped: number;
}

export function summarize(results: readonly Result[]): Summary {
  const s: Summary = { ok: 0, warning: 0, failed: 0, skipped: 0 };
  for (const r of results) {
    s[r.verdict]++;
    if (r.skipped) s.skipped++;
  }
  return s;
}

const MARK: Record<Verdict, string> = { ok: "ok", warning: "WARNING", failed: "FAILED" };

/** The table: CHECK, VERDICT, REASON, with "→ action" lines under non-ok checks. */
export function renderTable(results: readonly Result[]): string {
  const idWidth = Math.max(5, ...results.map((r) => r.id.length));
  const verdictWidth = 7;
  const lines = [`${"CHECK".padEnd(idWidth)}  ${"VERDICT".padEnd(verdictWidth)}  REASON`];
  for (const r of results) {
    lines.push(
      `${r.id.padEnd(idWidth)}  ${MARK[r.verdict].padEnd(verdictWidth)}  ${oneLine(r.reason)}`,
    );
    if (r.verdict !== "ok" && r.action) {
      lines.push(`${" ".repeat(idWidth + verdictWidth + 4)}→ ${oneLine(r.action)}`);
    }
  }
  const s = summarize(results);
  const skipped = s.skipped ? ` (${s.skipped} skipped)` : "";
  lines.push(
    "",
    `${s.ok} ok, ${s.warning} warning${s.warning === 1 ? "" : "s"}${skipped}, ${s.failed} failed`,
  );
  return maskSecrets(lines.join("\n"));
}

/** The JSON document of `--json`. */
export function renderJson(results: readonly Result[]): string {
  return maskSecrets(JSON.stringify({ checks: results, summary: summarize(results) }, null, 2));
}

/** Reasons are one line by contract; a multi-line library message is folded. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}
