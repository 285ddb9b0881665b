/**
 * Mounting and unmounting FUSE file systems without libfuse or fusermount,
 * and checking a mount point's health.
 *
 * `mountFuse` is the privileged path (root / CAP_SYS_ADMIN): open /dev/fuse,
 * then `mount(2)` with `fd=N,rootmode=…,user_id=…,group_id=…`. The fd is
 * returned O_NONBLOCK, ready for `FuseSession`. `serveFd` accepts an fd
 * opened and mounted by another process (the `/dev/fd/N` hand-over of the
 * CSI node role).
 *
 * Health: `checkMount` tells a live mount from a stale one, i.e. a FUSE mount
 * whose server died or closed its fd, where every access fails with ENOTCONN
 * until it is lazily unmounted.
 *
 * Nothing here touches a path *inside* a mount synchronously: the process
 * that calls these functions may be the one serving the mount, and a
 * synchronous stat on its own mount would block the loop that must answer it.
 * Paths are resolved through their parent directory, and mount points are
 * found in /proc/self/mountinfo.
 *
 * Readahead: the kernel caps FUSE readahead at the bdi's `read_ahead_kb`
 * (128 KiB by default) whatever INIT negotiated; `tuneReadahead` raises it
 * for one mount, which turns buffered sequential reads into 1 MiB requests.
 *
 * Requires `--allow-ffi`, `--allow-read` (/proc, /dev/fuse), `--allow-write`
 * (/sys/class/bdi) and `--allow-sys` (uid/gid defaults).
 *
 * @module
 */

import {
  close as sysClose,
  E,
  ioctl,
  MNT_DETACH,
  mount,
  MS_NOATIME,
  MS_NODEV,
  MS_NOSUID,
  MS_RDONLY,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  open,
  setNonBlocking,
  SysError,
  umount2,
} from "../sys/libc.ts";

export interface MountFuseOptions {
  /** The directory to mount on. */
  target: string;
  /** Shown as the mount source in /proc/mounts (e.g. "s3csi" or the bucket). */
  fsname: string;
  /** Makes the type "fuse.<subtype>". */
  subtype?: string;
  /** st_mode of the root (type bits); default: the target's own type (a directory). */
  rootMode?: number;
  /** The mount owner (user_id=); default: the process uid. */
  uid?: number;
  /** group_id=; default: the process gid. */
  gid?: number;
  /** Let other users access the mount (allow_other). Also needed to emulate allow_root. */
  allowOther?: boolean;
  readOnly?: boolean;
  /** Let the kernel check permissions from mode/uid/gid. */
  defaultPermissions?: boolean;
  /** max_read= (bytes); the kernel default is unlimited. */
  maxRead?: number;
}

/** The octal `rootmode` of a directory. */
const S_IFDIR = 0o040000;

function checkOptionValue(name: string, value: string): void {
  if (value === "" || /[,\0\s]/.test(value)) {
    throw new Error(
      `Invalid FUSE mount option ${name} "${value}": empty or contains a comma, NUL or space`,
    );
  }
}

/** The `data` string of mount(2) for a FUSE mount. */
function fuseMountData(
  fd: number,
  o: Required<Pick<MountFuseOptions, "rootMode" | "uid" | "gid">> & MountFuseOptions,
): string {
  const parts = [
    `fd=${fd}`,
    `rootmode=${o.rootMode.toString(8)}`,
    `user_id=${o.uid}`,
    `group_id=${o.gid}`,
  ];
  if (o.defaultPermissions) parts.push("default_permissions");
  if (o.allowOther) parts.push("allow_other");
  if (o.maxRead !== undefined) parts.push(`max_read=${Math.floor(o.maxRead)}`);
  return parts.join(",");
}

/**
 * Opens /dev/fuse and mounts it on `target`. Returns the fd (O_NONBLOCK,
 * close-on-exec). On failure the fd is closed and a SysError is thrown.
 */
export async function mountFuse(options: MountFuseOptions): Promise<number> {
  checkOptionValue("fsname", options.fsname);
  if (options.subtype !== undefined) checkOptionValue("subtype", options.subtype);
  let rootMode = options.rootMode;
  if (rootMode === undefined) {
    const st = await Deno.stat(options.target);
    rootMode = st.isDirectory ? S_IFDIR : (st.mode ?? 0) & 0o170000;
  }
  const uid = options.uid ?? Deno.uid() ?? 0;
  const gid = options.gid ?? Deno.gid() ?? 0;
  const fd = open("/dev/fuse", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  try {
    const data = fuseMountData(fd, { ...options, rootMode, uid, gid });
    let flags = MS_NOSUID | MS_NODEV | MS_NOATIME;
    if (options.readOnly) flags |= MS_RDONLY;
    const fstype = options.subtype ? `fuse.${options.subtype}` : "fuse";
    mount(options.fsname, options.target, fstype, flags, data);
    return fd;
  } catch (err) {
    sysClose(fd);
    throw err;
  }
}

export interface UnmountOptions {
  /** MNT_DETACH: detach now, clean up when no longer busy (works on stale mounts). */
  lazy?: boolean;
}

/**
 * Unmounts `target`. Not mounted (EINVAL) or missing (ENOENT) counts as
 * success, so callers can retry freely.
 */
export function unmount(target: string, options: UnmountOptions = {}): void {
  try {
    umount2(target, options.lazy ? MNT_DETACH : 0);
  } catch (err) {
    if (err instanceof SysError && (err.errno === E.EINVAL || err.errno === E.ENOENT)) return;
    throw err;
  }
}

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  root: string;
  mountPoint: string;
  options: string;
  /** The optional fields: propagation (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`). */
  optional: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

/** Undoes the octal escapes (\040 etc.) of /proc/self/mountinfo. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses mountinfo text (proc(5) format). Exported for tests. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (fields.length < 10 || sep < 0 || sep + 3 > fields.length) continue;
    const [major, minor] = fields[2]!.split(":").map(Number);
    out.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      major: major ?? 0,
      minor: minor ?? 0,
      root: unescapeMountField(fields[3]!),
      mountPoint: unescapeMountField(fields[4]!),
      options: fields[5]!,
      optional: fields.slice(6, sep),
      fstype: fields[sep + 1]!,
      source: unescapeMountField(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? "",
    });
  }
  return out;
}

/** The mounts of this process's mount namespace. */
export async function readMountInfo(): Promise<MountInfoEntry[]> {
  return parseMountInfo(await Deno.readTextFile("/proc/self/mountinfo"));
}

/**
 * The absolute, symlink-free form of `path`, resolved through its parent so
 * that the path itself is never accessed (it may be a stale mount).
 */
async function resolveMountPath(path: string): Promise<string> {
  const abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const trimmed = abs.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  const slash = trimmed.lastIndexOf("/");
  const parent = slash <= 0 ? "/" : trimmed.slice(0, slash);
  const base = trimmed.slice(slash + 1);
  if (base === "." || base === "..") return await Deno.realPath(trimmed);
  const realParent = await Deno.realPath(parent);
  return realParent === "/" ? `/${base}` : `${realParent}/${base}`;
}

/** The top-most mount on `path`, if any. Exported for the real-mount tests, which check it. */
export async function findMount(path: string): Promise<MountInfoEntry | undefined> {
  const p = await resolveMountPath(path);
  const mounts = await readMountInfo();
  let found: MountInfoEntry | undefined;
  for (const m of mounts) if (m.mountPoint === p) found = m; // later lines are stacked on top
  return found;
}

/** Whether something is mounted on `path`. Exported for the real-mount tests. */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await findMount(path)) !== undefined;
}

export type MountHealth = "ok" | "not_mounted" | "stale" | "missing";

/**
 * The state of a mount point: "ok" (mounted and answering), "not_mounted"
 * (an ordinary directory), "stale" (stat fails with ENOTCONN or
 * ECONNABORTED: a dead FUSE server), "missing" (the path does not exist).
 */
export async function checkMount(path: string): Promise<MountHealth> {
  try {
    await Deno.stat(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOTCONN" || code === "ECONNABORTED") return "stale";
    if (err instanceof Deno.errors.NotFound) {
      // A stale mount on a deleted directory still shows in mountinfo.
      return (await isMountPoint(path).catch(() => false)) ? "stale" : "missing";
    }
    throw err;
  }
  return (await isMountPoint(path)) ? "ok" : "not_mounted";
}

/**
 * Sets the readahead of the mount on `target` (its bdi's read_ahead_kb).
 * Call after mounting; 1024 makes buffered sequential reads arrive as 1 MiB
 * requests (with max_pages 256).
 */
export async function tuneReadahead(target: string, kb: number): Promise<void> {
  const m = await findMount(target);
  if (!m) throw new Error(`Cannot tune readahead of "${target}": not a mount point`);
  const path = `/sys/class/bdi/${m.major}:${m.minor}/read_ahead_kb`;
  try {
    await Deno.writeTextFile(path, `${Math.max(0, Math.floor(kb))}\n`);
  } catch (err) {
    throw new Error(`Cannot set readahead of "${target}" in "${path}"`, { cause: err });
  }
}

/**
 * Accepts an fd of an already-mounted /dev/fuse connection handed over by a
 * parent process, as a number or as "/dev/fd/N". Checks that it is
 * /dev/fuse and makes it O_NONBLOCK, as `FuseSession` requires.
 */
export async function serveFd(fdOrPath: number | string): Promise<number> {
  let fd: number;
  if (typeof fdOrPath === "number") {
    fd = fdOrPath;
  } else {
    const m = /^\/dev\/fd\/(\d+)$/.exec(fdOrPath);
    if (!m) throw new Error(`Invalid FUSE fd "${fdOrPath}": expected "/dev/fd/N"`);
    fd = Number(m[1]);
  }
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`Invalid FUSE fd "${fdOrPath}"`);
  let target: string;
  try {
    target = await Deno.readLink(`/proc/self/fd/${fd}`);
  } catch (err) {
    throw new Error(`Cannot use FUSE fd "${fd}": not open`, { cause: err });
  }
  if (target !== "/dev/fuse") {
    throw new Error(`Cannot use FUSE fd "${fd}": it refers to "${target}", not "/dev/fuse"`);
  }
  setNonBlocking(fd);
  return fd;
}

/** ioctl(2) request: _IOR(229, 0, uint32_t); the argument points to the fd to clone. */
export const FUSE_DEV_IOC_CLONE = 0x8004e500;

/**
 * A new /dev/fuse fd (close-on-exec) attached to the same connection as
 * `fd`. The kernel ends a FUSE connection only when its last device fd is
 * closed, so whoever keeps `fd` keeps the mount alive while the server on
 * the clone dies and another takes over on a new clone: the requests the
 * dead server had read fail once (ECONNABORTED), new ones wait in the
 * kernel for the next reader (shared/reference/measured-here.md).
 */
export function cloneFuseFd(fd: number): number {
  const clone = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  try {
    ioctl(clone, FUSE_DEV_IOC_CLONE, new Uint8Array(new Uint32Array([fd]).buffer));
    return clone;
  } catch (err) {
    sysClose(clone);
    throw err;
  }
}
