/**
 * The kernel's mount table (`/proc/self/mountinfo`), parsed.
 *
 * The node keeps no state file: which targets share a FUSE mount is read
 * from here. A bind mount has the same device (`major:minor`) as the FUSE
 * mount it comes from, so "which source serves this target" and "does this
 * source still have targets" survive a node-plugin restart.
 *
 * @module
 */

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the mounted file system. */
  device: string;
  /** Path inside the file system that is mounted here ("/" for a whole mount). */
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
}

/** Undoes the octal escapes mountinfo uses for space, tab, newline and backslash. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-");
    if (sep < 6) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2],
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      options: fields[5],
      fsType: fields[sep + 1] ?? "",
      source: unescape(fields[sep + 2] ?? ""),
    });
  }
  return out;
}

export async function readMountTable(): Promise<MountEntry[]> {
  return parseMountInfo(await Deno.readTextFile("/proc/self/mountinfo"));
}

/** The topmost entry mounted exactly at `path`, if any. */
export function findMount(table: MountEntry[], path: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const e of table) if (e.mountPoint === path) found = e;
  return found;
}

/** Mount points (other than `except`) that show the file system with `device`. */
export function mountsOfDevice(table: MountEntry[], device: string, except?: string): string[] {
  return table.filter((e) => e.device === device && e.mountPoint !== except).map((e) =>
    e.mountPoint
  );
}
