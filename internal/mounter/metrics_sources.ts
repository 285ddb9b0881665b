/**
 * Which mounts the node gathers metrics from, kept on disk beside each
 * mount's state so that a restarted node finds the mounts it did not start.
 *
 * Once a mount serves, its Mounter records `METRICS_RECORD` in the mount's
 * state directory: the volume ID and the unix socket the mount's server
 * answers on (the Mountpoint Pod's comm directory, or the state directory of
 * a `process` child). Unmounting removes the state directory and the record
 * with it. `metricsSources()` lists the records of a state root at scrape
 * time; a record whose socket is gone only costs that scrape one failed
 * connect.
 *
 * @module
 */
import type { VolumeSource } from "../metrics/mod.ts";

/** The record's file name in a mount's state directory. */
export const METRICS_RECORD = "metrics.json";

export async function recordMetricsSource(
  stateDir: string,
  volumeId: string,
  socketPath: string,
): Promise<void> {
  const record: VolumeSource = { volumeId, socketPath };
  const tmp = `${stateDir}/${METRICS_RECORD}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(record));
  await Deno.rename(tmp, `${stateDir}/${METRICS_RECORD}`);
}

/** Every recorded source under `stateRoot` (one state directory per mount). */
export async function metricsSources(stateRoot: string): Promise<VolumeSource[]> {
  const out: VolumeSource[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(stateRoot));
  } catch {
    return out; // no mount made yet
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    try {
      const r = JSON.parse(
        await Deno.readTextFile(`${stateRoot}/${e.name}/${METRICS_RECORD}`),
      ) as Partial<VolumeSource>;
      if (typeof r.volumeId === "string" && typeof r.socketPath === "string") {
        out.push({ volumeId: r.volumeId, socketPath: r.socketPath });
      }
    } catch { /* not serving yet, or being removed */ }
  }
  return out;
}
