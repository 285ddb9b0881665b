/**
 * Per-volume metrics: how the figures of each mount reach the node's
 * endpoint with a `volume_id` label.
 *
 * A mount process (a Mountpoint Pod, or a child of the `process` mounter)
 * serves its own registry as JSON on a unix socket beside its other state
 * (`serveVolumeSocket`): one connection, one JSON document, then close. No
 * TCP port per mount, nothing for a Mountpoint Pod to expose, and the socket
 * is reachable only by who can reach the directory (the node, as root).
 *
 * When Prometheus scrapes the node, `gather()` reads every live mount's
 * socket in parallel, each bounded by a timeout, adds `volume_id` to every
 * sample, and merges them with the node's own registry into one exposition.
 * A mount that does not answer is left out of that scrape and counted in
 * `s3csi_volume_scrape_errors_total`; the scrape itself never fails for it.
 *
 * @module
 */
import client from "prom-client";
import { log as rootLog } from "../log/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import { viaDirFd } from "../sys/libc.ts";
import { registry, volumeScrapeErrors } from "./families.ts";

const log = rootLog.with({ component: "metrics" });

/** How long the node waits for one mount's figures during a scrape. */
const VOLUME_READ_TIMEOUT_MS = 2_000;

type MetricJson = Awaited<ReturnType<typeof registry.getMetricsAsJSON>>[number];

/** A mount whose figures the node gathers. */
export interface VolumeSource {
  volumeId: string;
  /** The mount's metrics socket. */
  socketPath: string;
}

/** `fn` on a short name of socket `path`: host comm paths exceed a unix address's 107 bytes. */
function viaDir<T>(path: string, fn: (short: string) => T): T {
  const slash = path.lastIndexOf("/");
  return viaDirFd(path.slice(0, slash) || "/", (dir) => fn(`${dir}${path.slice(slash)}`));
}

/** Serves this process's registry as JSON on `path` until the returned stop() is called. */
export function serveVolumeSocket(path: string): { stop(): Promise<void> } {
  try {
    Deno.removeSync(path);
  } catch { /* absent */ }
  const listener = viaDir(path, (short) => Deno.listen({ transport: "unix", path: short }));
  const served = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          const body = new TextEncoder().encode(JSON.stringify(await registry.getMetricsAsJSON()));
          for (let off = 0; off < body.length;) off += await conn.write(body.subarray(off));
        } catch (err) {
          log.debug("metrics socket write failed", { error: errorMessage(err) });
        } finally {
          try {
            conn.close();
          } catch { /* closed by the peer */ }
        }
      })();
    }
  })().catch(() => {/* listener closed */});
  return {
    async stop() {
      try {
        listener.close();
      } catch { /* already closed */ }
      await served;
      try {
        Deno.removeSync(path);
      } catch { /* absent */ }
    },
  };
}

/** One mount's registry, read from its socket. */
export async function readVolumeSocket(
  path: string,
  timeoutMs = VOLUME_READ_TIMEOUT_MS,
): Promise<MetricJson[]> {
  // Through a directory fd: a comm directory's socket path on the host is longer than the
  // 107 bytes a unix socket address holds.
  const conn = await viaDir(path, (short) => Deno.connect({ transport: "unix", path: short }));
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const text = await new Response(conn.readable).text();
    return JSON.parse(text) as MetricJson[];
  } catch (err) {
    throw new Error(`Cannot read the metrics of ${path}: ${errorMessage(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function withLabel(metrics: MetricJson[], name: string, value: string): MetricJson[] {
  return metrics.map((m) => ({
    ...m,
    values: m.values.map((v) => ({ ...v, labels: { ...v.labels, [name]: value } })),
  })) as MetricJson[];
}

/** The exposition of this process's registry and of every source's, labelled by volume. */
export async function gather(sources: readonly VolumeSource[] = []): Promise<string> {
  if (sources.length === 0) return await registry.metrics();
  const own = await registry.getMetricsAsJSON();
  const volumes = await Promise.all(sources.map(async (s) => {
    try {
      return withLabel(await readVolumeSocket(s.socketPath), "volume_id", s.volumeId);
    } catch (err) {
      volumeScrapeErrors.inc();
      log.debug("left a mount out of this scrape", {
        volumeId: s.volumeId,
        error: errorMessage(err),
      });
      return [];
    }
  }));
  // Distinct label sets (each volume's carry its volume_id) never collide, so merging only
  // concatenates samples family by family.
  return await client.AggregatorRegistry.aggregate([own, ...volumes]).metrics();
}

/** `content-type` of the text exposition format. */
export const CONTENT_TYPE = registry.contentType;
