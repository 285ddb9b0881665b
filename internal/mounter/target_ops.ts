/**
 * The node's file-system and mount-table seam: everything the node service
 * does to a path besides what the Mounter does to a source.
 *
 * `TargetOps` is the contract: mount health, which source a target is a bind
 * mount of and whether it is read-only, whether a source still has targets,
 * making and removing target directories, bind mounts and unmounts. The node service goes through it
 * and nothing else, so its publish and unpublish logic runs against an
 * in-memory double in unit tests.
 *
 * `BindTargetOps` is the real one. Which targets use which source comes from
 * the kernel mount table (/proc/self/mountinfo): a bind mount shows its
 * source's device number, so the table alone says who uses what and a
 * restarted node plugin needs no state file. A read-only publish is a bind
 * mount remounted with MS_RDONLY, so the kernel refuses writes with EROFS
 * before they reach the file system, while the source it shows may be
 * writable and shared with writable targets (only a PV-level read-only makes
 * the source read-only). The same table tells whether a target is read-only.
 *
 * @module
 */
import {
  checkMount,
  type MountHealth,
  type MountInfoEntry,
  readMountInfo,
  unmount,
} from "../fuse/mod.ts";
import { dirname, isInside, removeIfPresent } from "../util/path.ts";
import { mount, MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY } from "../sys/libc.ts";

export interface TargetOps {
  /** Health of a mount point, a target or a source. */
  check(path: string): Promise<MountHealth>;
  /**
   * The mount point under `sourceRoot` whose file system `target`
   * shows (the source it is a bind mount of), or undefined when `target` is
   * not mounted or shows something else.
   */
  sourceOf(target: string, sourceRoot: string): Promise<string | undefined>;
  /** Whether the top mount on `path` is read-only (refuses writes with EROFS). */
  readOnly(path: string): Promise<boolean>;
  /** Whether a mount other than `source` itself shows the file system mounted on `source`. */
  inUse(source: string): Promise<boolean>;
  /**
   * Why `target` would lead out of `root` on the real file system (a
   * symbolic link on the way, or at the target itself), or is a file where
   * a directory goes; undefined when it is safe to create and mount on.
   * The path check of the CSI server is lexical; mkdir and mount follow
   * links, so this one looks at what is there.
   */
  confine(target: string, root: string): Promise<string | undefined>;
  /** Creates a target directory (and its parents). */
  makeTarget(target: string): Promise<void>;
  /** Removes a target directory; a missing one is success. */
  removeTarget(target: string): Promise<void>;
  bind(source: string, target: string, readOnly: boolean): Promise<void>;
  /** Unmounts the top mount on `path`; not mounted or missing is success. */
  unmount(path: string, lazy: boolean): Promise<void>;
}

const MS_REMOUNT = 32;

/** The entry mounted on top at `path` (later lines are stacked on earlier ones). */
function mountAt(table: MountInfoEntry[], path: string): MountInfoEntry | undefined {
  let found: MountInfoEntry | undefined;
  for (const e of table) if (e.mountPoint === path) found = e;
  return found;
}

function sameDevice(a: MountInfoEntry, b: MountInfoEntry): boolean {
  return a.major === b.major && a.minor === b.minor;
}

export class BindTargetOps implements TargetOps {
  check(path: string): Promise<MountHealth> {
    return checkMount(path);
  }

  async sourceOf(target: string, sourceRoot: string): Promise<string | undefined> {
    const table = await readMountInfo();
    const t = mountAt(table, target);
    if (!t) return undefined;
    return table.find((e) => sameDevice(e, t) && e.mountPoint.startsWith(sourceRoot + "/"))
      ?.mountPoint;
  }

  async readOnly(path: string): Promise<boolean> {
    // The per-mount options (MS_RDONLY of a bind), not the super block's.
    const m = mountAt(await readMountInfo(), path);
    return m !== undefined && m.options.split(",").includes("ro");
  }

  async inUse(source: string): Promise<boolean> {
    const table = await readMountInfo();
    const s = mountAt(table, source);
    return s !== undefined && table.some((e) => sameDevice(e, s) && e.mountPoint !== source);
  }

  async confine(target: string, root: string): Promise<string | undefined> {
    const realRoot = await Deno.realPath(root).catch(() => root);
    try {
      const st = await Deno.lstat(target);
      if (st.isSymlink) return "it is a symbolic link";
      if (st.isFile) return "it is a file, not a directory";
    } catch (err) {
      // Missing: created below. Any other error (ENOTCONN): a dead mount, which publish cleans.
      if (!(err instanceof Deno.errors.NotFound)) return undefined;
    }
    // The nearest ancestor that exists, with every link on the way resolved.
    for (let dir = dirname(target); dir !== "/"; dir = dirname(dir)) {
      let real: string;
      try {
        real = await Deno.realPath(dir);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
      if (!isInside(real, realRoot)) {
        return `it leads out of the kubelet directory through "${dir}", which is "${real}"`;
      }
      const st = await Deno.stat(dir);
      if (!st.isDirectory) return `"${dir}" is not a directory`;
      return undefined;
    }
    return `it leads out of the kubelet directory "${root}"`;
  }

  async makeTarget(target: string): Promise<void> {
    await Deno.mkdir(target, { recursive: true, mode: 0o750 });
  }

  removeTarget(target: string): Promise<void> {
    return removeIfPresent(target);
  }

  bind(source: string, target: string, readOnly: boolean): Promise<void> {
    mount(source, target, "", MS_BIND, "");
    if (readOnly) {
      try {
        mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "");
      } catch (err) {
        unmount(target, { lazy: true });
        throw err;
      }
    }
    return Promise.resolve();
  }

  unmount(path: string, lazy: boolean): Promise<void> {
    unmount(path, { lazy });
    return Promise.resolve();
  }
}
