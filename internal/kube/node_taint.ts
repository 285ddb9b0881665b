/**
 * Removing the startup taint: a node is created (or its driver pod
 * restarted) with `s3.csi.scality.com/agent-not-ready` so that no workload
 * using the driver is scheduled there before the node plugin serves; once
 * it serves, the plugin removes the taint from its own Node object, whatever
 * the taint's effect.
 *
 * The Node is read, then patched with a JSON patch whose first operation
 * tests the resourceVersion read: the taint list is replaced as a whole, so
 * a concurrent change to the taints (the node lifecycle controller adds and
 * removes its own) must not be overwritten. A failed test (HTTP 422) or a
 * conflict (409) reads again and retries at once; network failures and
 * server errors retry with a doubling delay; both are bounded. Denied
 * access (401, 403), a missing Node (404) or a refused request give up at
 * once. Every give-up is a warning only: the node keeps serving, with or
 * without Kubernetes. HTTP statuses become domain errors once, in
 * `kubeError`, and the retry policy reads their kinds.
 *
 * The Node API is an interface (`NodeApi`) so the logic is tested against a
 * fake; `kubeNodeApi()` implements it on `@kubernetes/client-node`, from
 * `KUBECONFIG` or else the pod's service account, and is absent outside a
 * cluster (local runs and tests).
 *
 * @module
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Taint,
} from "@kubernetes/client-node";
import { AGENT_NOT_READY_TAINT } from "../podmount/contract.ts";
import { AbortedError, errorMessage, S3csiError, UnavailableError } from "../errors/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { apiError } from "./api.ts";
import { findKubeConfig } from "./config.ts";

const log = rootLog.with({ component: "node-taint" });

/** A call that has not answered in this time counts as a network failure. */
const CALL_TIMEOUT_MS = 15_000;

/** The part of a Node the removal reads. */
export interface NodeTaints {
  resourceVersion: string;
  taints: V1Taint[];
}

export type JsonPatchOp =
  | { op: "test"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown };

/**
 * The domain error of a failed call: the API's one mapping (`apiError`),
 * except that 422 here is the patch's `test` operation failing (the Node
 * changed since it was read: `aborted`, read again), and no status at all
 * is a network failure (`unavailable`).
 */
export function kubeError(
  message: string,
  status: number | undefined,
  options?: ErrorOptions,
): S3csiError {
  if (status === undefined) return new UnavailableError(message, options);
  if (status === 422) return new AbortedError(message, options);
  return apiError(status, message, undefined, options);
}

/** Get and JSON-patch one Node; failures are the domain errors of `kubeError`. */
export interface NodeApi {
  get(name: string): Promise<NodeTaints>;
  patch(name: string, ops: JsonPatchOp[]): Promise<void>;
}

export interface RemoveOptions {
  /** Rounds of read and patch (default 8). */
  maxAttempts?: number;
  /** First delay after a network or server failure, doubled each time up to 30 s (default 1 s). */
  backoffMs?: number;
  /** Stops retrying (shutdown). */
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export type RemoveOutcome = "removed" | "absent" | "gave-up";

/** The patch that drops `key` from a Node read at `node.resourceVersion`; undefined when absent. */
export function taintRemovalPatch(node: NodeTaints, key: string): JsonPatchOp[] | undefined {
  const kept = node.taints.filter((t) => t.key !== key);
  if (kept.length === node.taints.length) return undefined;
  return [
    { op: "test", path: "/metadata/resourceVersion", value: node.resourceVersion },
    { op: "replace", path: "/spec/taints", value: kept },
  ];
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Removes the startup taint from Node `nodeName`; never rejects. */
export async function removeStartupTaint(
  api: NodeApi,
  nodeName: string,
  opts: RemoveOptions = {},
): Promise<RemoveOutcome> {
  const maxAttempts = opts.maxAttempts ?? 8;
  const sleep = opts.sleep ?? sleepFor;
  const nlog = log.with({ node: nodeName, taint: AGENT_NOT_READY_TAINT });
  let delay = opts.backoffMs ?? 1000;
  let lastError = "";
  let attempt = 0;
  while (++attempt <= maxAttempts) {
    if (opts.signal?.aborted) {
      nlog.info("startup taint left: shutting down");
      return "gave-up";
    }
    try {
      const patch = taintRemovalPatch(await api.get(nodeName), AGENT_NOT_READY_TAINT);
      if (!patch) {
        nlog.info("startup taint absent");
        return "absent";
      }
      await api.patch(nodeName, patch);
      nlog.info("startup taint removed", { attempt });
      return "removed";
    } catch (err) {
      const kind = err instanceof S3csiError ? err.kind : "unavailable";
      lastError = errorMessage(err);
      if (kind === "aborted") {
        nlog.debug("node changed meanwhile: reading it again", { error: lastError });
        continue;
      }
      if (kind !== "unavailable") {
        nlog.warn("cannot remove the startup taint: giving up", { kind, error: lastError });
        return "gave-up";
      }
      if (attempt === maxAttempts) break;
      nlog.debug("node API failed: retrying", { error: lastError, delayMs: delay });
      await sleep(delay, opts.signal);
      delay = Math.min(delay * 2, 30_000);
    }
  }
  nlog.warn("cannot remove the startup taint: giving up", {
    attempts: maxAttempts,
    error: lastError,
  });
  return "gave-up";
}

/**
 * Removes the startup taint through the API this process can reach; outside
 * Kubernetes, or with a kubeconfig that cannot be read, only warns.
 */
export async function removeStartupTaintFromEnv(
  nodeName: string,
  opts: RemoveOptions = {},
): Promise<RemoveOutcome> {
  let kc: KubeConfig | undefined;
  try {
    kc = findKubeConfig();
  } catch (err) {
    log.warn("cannot load the kubeconfig: startup taint left", { error: errorMessage(err) });
    return "gave-up";
  }
  if (!kc) {
    log.warn("no Kubernetes API access (no KUBECONFIG, no service account): startup taint left", {
      node: nodeName,
    });
    return "gave-up";
  }
  return await removeStartupTaint(kubeNodeApi(kc), nodeName, opts);
}

function withTimeout<T>(call: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(kubeError(`${what}: no answer in ${CALL_TIMEOUT_MS} ms`, undefined)),
      CALL_TIMEOUT_MS,
    );
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

/** The `message` of a Kubernetes Status body, as ": message", or "". */
function statusMessage(body: unknown): string {
  try {
    const status = typeof body === "string" ? JSON.parse(body) : body;
    return typeof status?.message === "string" ? `: ${status.message}` : "";
  } catch {
    return "";
  }
}

function callError(what: string, err: unknown): S3csiError {
  if (err instanceof S3csiError) return err;
  if (err instanceof ApiException) {
    return kubeError(`${what}: HTTP ${err.code}${statusMessage(err.body)}`, err.code, {
      cause: err,
    });
  }
  return kubeError(`${what}: ${errorMessage(err)}`, undefined, { cause: err });
}

/** `NodeApi` on the real API server. */
export function kubeNodeApi(kc: KubeConfig): NodeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
  return {
    async get(name) {
      const what = `Cannot read Node "${name}"`;
      try {
        const node = await withTimeout(core.readNode({ name }), what);
        return {
          resourceVersion: node.metadata?.resourceVersion ?? "",
          // Plain JSON again (the client's model classes and Dates), as it is sent back.
          taints: JSON.parse(JSON.stringify(node.spec?.taints ?? [])),
        };
      } catch (err) {
        throw callError(what, err);
      }
    },
    async patch(name, ops) {
      const what = `Cannot patch Node "${name}"`;
      try {
        await withTimeout(core.patchNode({ name, body: ops }, jsonPatch), what);
      } catch (err) {
        throw callError(what, err);
      }
    },
  };
}
