/**
 * What the pod mounter keeps of a source in its state directory, so that
 * the source outlives the processes on both sides of it:
 * - `comm`: the serving pod's comm directory (credentials rotation finds it);
 * - `served.json`: the spec without credentials, the pod and its comm
 *   directory, for a restarted node plugin's `recover()`;
 * - `journal`: the node's copy of the pod's takeover journal, taken when the
 *   pod goes (its emptyDir goes with it) and put into the comm directory of
 *   the pod that takes over.
 *
 * Every file is root's, mode 0600, and holds no secret: the credentials
 * stay in the pod's one credentials file.
 *
 * @module
 */
import { log as rootLog } from "../log/mod.ts";
import type { MountpointPodRef } from "../podmount/attachment_lookup.ts";
import { JOURNAL_FILE } from "../podmount/contract.ts";
import type { MountSpec } from "./mounter.ts";

const log = rootLog.with({ component: "mounter" });

/** The state-directory file that remembers a source's comm directory. */
export const COMM_RECORD = "comm";
const SERVED_RECORD = "served.json";

export interface ServedRecord {
  /** The spec, without its credentials (they are in the pod's credentials file). */
  spec: MountSpec;
  hasCredentials: boolean;
  commDir: string;
  pod: MountpointPodRef;
}

/** Writes the records `recover()` finds a served source by. */
export async function writeServedRecord(
  served: { spec: MountSpec; commDir: string; pod: MountpointPodRef },
): Promise<void> {
  const { spec, commDir, pod } = served;
  const { credentials, ...rest } = spec;
  const record: ServedRecord = { spec: rest, hasCredentials: !!credentials, commDir, pod };
  await Deno.writeTextFile(`${spec.stateDir}/${COMM_RECORD}`, commDir);
  const tmp = `${spec.stateDir}/${SERVED_RECORD}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(record), { mode: 0o600 });
  await Deno.rename(tmp, `${spec.stateDir}/${SERVED_RECORD}`);
}

/** The record of the source whose state directory is `stateDir`; throws when there is none. */
export async function readServedRecord(stateDir: string): Promise<ServedRecord> {
  return JSON.parse(await Deno.readTextFile(`${stateDir}/${SERVED_RECORD}`));
}

/** Copies the pod's journal into the state directory, where a new pod's copy comes from. */
export async function saveJournal(commDir: string, spec: MountSpec): Promise<void> {
  const tmp = `${spec.stateDir}/${JOURNAL_FILE}.tmp`;
  try {
    await Deno.copyFile(`${commDir}/${JOURNAL_FILE}`, tmp);
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, `${spec.stateDir}/${JOURNAL_FILE}`);
  } catch (err) {
    log.warn("cannot copy the Mountpoint Pod's journal", { source: spec.sourceDir, error: err });
  }
}

/** Puts the saved journal into a new pod's comm directory, owned by the pod's user. */
export async function placeJournal(
  stateDir: string,
  commDir: string,
  owner: { uid: number; gid: number },
): Promise<void> {
  const tmp = `${commDir}/${JOURNAL_FILE}.tmp`;
  await Deno.copyFile(`${stateDir}/${JOURNAL_FILE}`, tmp);
  await Deno.chown(tmp, owner.uid, owner.gid);
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, `${commDir}/${JOURNAL_FILE}`);
}
