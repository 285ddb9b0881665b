/**
 * The doctor's checks and the runner that runs them.
 *
 * A check answers one question about the node, S3 or the cluster with one
 * verdict: `ok`, `warning` (works, but something deserves a look) or
 * `failed` (the driver will not work until it is fixed), a one-line reason
 * and, when not ok, what to do. Only `failed` changes the exit code.
 *
 * Dependencies. A check may name checks it `needs` (TLS needs TCP, which
 * needs DNS). When one of them did not pass (failed, or was itself skipped)
 * the check is not run: it is reported as a *warning* marked `skipped`,
 * whose reason names the check at fault. It is a warning and not a failure
 * so that one broken thing counts once, as the one failed line the user
 * has to fix, and the exit code stays about real failures.
 *
 * Time. Checks run one after the other, in the order given (dependencies
 * come first), each with its own deadline: past it the check's signal is
 * aborted and it is reported failed ("Timed out after …"), so the doctor
 * never hangs on a black-holed address. A check that throws is reported
 * failed with the error's message, but for a refusal of the identity the
 * doctor runs as (`PermissionDeniedError`, a 403 of the API server), which
 * is a warning naming what could not be read; checks are written so that
 * messages hold no secret (see `report.ts` for the last guard).
 *
 * @module
 */
import { errorMessage, PermissionDeniedError } from "../errors/mod.ts";

export type Verdict = "ok" | "warning" | "failed";
export type Group = "local" | "s3" | "cluster";

/** What a check found. */
export interface Finding {
  verdict: Verdict;
  /** One line: what was found. */
  reason: string;
  /** One line: what to do about it (for warnings and failures). */
  action?: string;
  /** Facts for `--json` (versions, names, dates); never secrets. */
  detail?: Record<string, unknown>;
}

/** A finding as reported, with the check it belongs to. */
export interface Result extends Finding {
  id: string;
  group: Group;
  title: string;
  /** Not run because a check it needs did not pass. */
  skipped?: boolean;
  durationMs: number;
}

export interface CheckContext {
  /** Aborted when the check's deadline passes. */
  signal: AbortSignal;
  /** Results of the checks run so far, by id. */
  results: ReadonlyMap<string, Result>;
}

export interface Check {
  /** Stable, dotted: `s3.tls`, `local.fuse-mount`. Also the key of `--json` consumers. */
  id: string;
  group: Group;
  title: string;
  /** Checks that must pass (ok or warning, not skipped) before this one runs. */
  needs?: readonly string[];
  /** Own deadline; the runner's default otherwise. */
  timeoutMs?: number;
  run(ctx: CheckContext): Promise<Finding>;
}

export interface RunOptions {
  /** Deadline of a check without its own. Default 10 s. */
  timeoutMs?: number;
  /** Called after each check, e.g. to show progress. */
  onResult?: (r: Result) => void;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** Shorthands for findings. */
export const ok = (reason: string, detail?: Record<string, unknown>): Finding =>
  detail ? { verdict: "ok", reason, detail } : { verdict: "ok", reason };
export const warning = (
  reason: string,
  action: string,
  detail?: Record<string, unknown>,
): Finding =>
  detail ? { verdict: "warning", reason, action, detail } : { verdict: "warning", reason, action };
export const failed = (
  reason: string,
  action: string,
  detail?: Record<string, unknown>,
): Finding =>
  detail ? { verdict: "failed", reason, action, detail } : { verdict: "failed", reason, action };

/** True when a result lets its dependents run. */
function passed(r: Result | undefined): boolean {
  return r !== undefined && r.verdict !== "failed" && !r.skipped;
}

/** Runs `checks` in order and returns one result per check. Never throws. */
export async function runChecks(
  checks: readonly Check[],
  opts: RunOptions = {},
): Promise<Result[]> {
  const results = new Map<string, Result>();
  const out: Result[] = [];
  for (const check of checks) {
    const started = performance.now();
    const blocker = check.needs?.find((id) => !passed(results.get(id)));
    let finding: Finding;
    let skipped = false;
    if (blocker !== undefined) {
      skipped = true;
      const why = results.get(blocker)?.skipped
        ? "was skipped"
        : results.has(blocker)
        ? "failed"
        : "did not run";
      finding = warning(`Skipped: ${blocker} ${why}`, `Fix ${blocker} first`);
    } else {
      finding = await runOne(
        check,
        results,
        check.timeoutMs ?? opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      );
    }
    const result: Result = {
      id: check.id,
      group: check.group,
      title: check.title,
      ...finding,
      ...(skipped ? { skipped } : {}),
      durationMs: Math.round(performance.now() - started),
    };
    results.set(check.id, result);
    out.push(result);
    opts.onResult?.(result);
  }
  return out;
}

async function runOne(
  check: Check,
  results: ReadonlyMap<string, Result>,
  timeoutMs: number,
): Promise<Finding> {
  const deadline = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<Finding>((resolve) => {
    timer = setTimeout(() => {
      deadline.abort(new Error(`Timed out after ${timeoutMs} ms`));
      resolve(failed(
        `Timed out after ${timeoutMs / 1000} s`,
        "Look for a firewall or an address that drops packets; raise --timeout if the link is slow",
      ));
    }, timeoutMs);
  });
  try {
    return await Promise.race([
      check.run({ signal: deadline.signal, results }).catch((err) =>
        // The identity the doctor runs as may not read what it checks (the node's service
        // account reads no CSIDriver or CRD): not a fault of the driver, and not an answer.
        err instanceof PermissionDeniedError
          ? warning(
            `Not allowed to check: ${errorMessage(err)}`,
            "Run the doctor with a kubeconfig allowed to read it, e.g. an administrator's: " +
              "s3csi doctor --kubeconfig <file> --skip local",
          )
          : failed(
            `Check failed unexpectedly: ${errorMessage(err)}`,
            "Report this as a bug of s3csi doctor",
          )
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when no result failed: the exit code is 0. */
export function nothingFailed(results: readonly Result[]): boolean {
  return results.every((r) => r.verdict !== "failed");
}
