/**
 * A FUSE mount that proves FUSE works end to end on this node: open
 * /dev/fuse, mount(2) it on a fresh temporary directory, answer the
 * kernel's INIT with the driver's own session code (so the protocol version
 * reported is the one a real mount would speak), stat the mount point
 * through the kernel (a GETATTR the session answers), unmount, and remove
 * the directory.
 *
 * The file system served is an empty read-only directory: the probe needs
 * the handshake and one round trip, nothing from S3.
 *
 * Requires root or CAP_SYS_ADMIN (mount(2)), `--allow-ffi`, `--allow-read`
 * and `--allow-write` (the temporary directory).
 *
 * @module
 */
import {
  type AttrReply,
  type Entry,
  Errno,
  type FileSystem,
  FsError,
  type OpenReply,
  ROOT_INO,
  S_IFDIR,
  type StatFs,
} from "../fs/api.ts";
import { FuseSession, mountFuse, type Negotiated, unmount } from "../fuse/mod.ts";
import { log } from "../log/mod.ts";

export interface FuseProbeResult {
  /** The protocol the session speaks with this kernel, `7.x`. */
  protocol: string;
  /** The kernel's own minor version (it may be newer than ours). */
  kernelProtocol: string;
}

const refuse = (): never => {
  throw new FsError(Errno.EROFS, "the doctor's probe file system is read-only");
};

/** An empty, read-only root directory. */
class EmptyFs implements FileSystem {
  readonly #now = Date.now();

  #root(): AttrReply {
    return {
      ttlMs: 0,
      attr: {
        ino: ROOT_INO,
        size: 0,
        blocks: 0,
        atimeMs: this.#now,
        mtimeMs: this.#now,
        ctimeMs: this.#now,
        mode: S_IFDIR | 0o555,
        nlink: 2,
        uid: 0,
        gid: 0,
        blksize: 4096,
      },
    };
  }

  lookup(): Promise<Entry> {
    return Promise.reject(new FsError(Errno.ENOENT, "empty"));
  }
  forget(): void {}
  getattr(): Promise<AttrReply> {
    return Promise.resolve(this.#root());
  }
  setattr = () => Promise.reject(refuse());
  mknod = () => Promise.reject(refuse());
  mkdir = () => Promise.reject(refuse());
  unlink = () => Promise.reject(refuse());
  rmdir = () => Promise.reject(refuse());
  rename = () => Promise.reject(refuse());
  open = () => Promise.reject(new FsError(Errno.ENOENT, "empty"));
  read = () => Promise.reject(new FsError(Errno.EBADF, "no files"));
  write = () => Promise.reject(refuse());
  flush = () => Promise.resolve();
  release = () => Promise.resolve();
  fsync = () => Promise.resolve();
  opendir(): Promise<OpenReply> {
    return Promise.resolve({ fh: 1 });
  }
  readdir = () => Promise.resolve();
  releasedir = () => Promise.resolve();
  statfs(): Promise<StatFs> {
    return Promise.resolve({
      blocks: 0,
      bfree: 0,
      bavail: 0,
      files: 0,
      ffree: 0,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    });
  }
}

/**
 * Mounts, handshakes, stats and unmounts as described above. Throws the
 * mount's `SysError` (EPERM without privileges, ENODEV without the fuse
 * module) or an error naming the step that failed. On abort, unmounts and
 * rejects.
 */
export async function probeFuseMount(signal: AbortSignal): Promise<FuseProbeResult> {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-doctor-fuse-" });
  let session: FuseSession | undefined;
  let running: Promise<void> | undefined;
  try {
    const fd = await mountFuse({ target: dir, fsname: "s3csi-doctor", subtype: "s3csi-doctor" });
    session = new FuseSession(fd, new EmptyFs(), {
      maxInFlight: 2,
      logger: log.with({ component: "doctor-fuse" }),
    });
    running = session.run();
    const negotiated: Negotiated = await abortable(session.ready, signal, "INIT handshake");
    // Through the kernel and back: the session answers GETATTR of the root.
    const st = await abortable(Deno.stat(dir), signal, "stat of the mount point");
    if (!st.isDirectory) throw new Error("The mount point's root is not a directory");
    unmount(dir);
    await abortable(running, signal, "end of the session");
    return {
      protocol: `${negotiated.major}.${negotiated.minor}`,
      kernelProtocol: `${negotiated.major}.${negotiated.kernelMinor}`,
    };
  } finally {
    // Whatever happened, leave nothing mounted: a lazy unmount also frees a wedged one.
    try {
      unmount(dir, { lazy: true });
    } catch {
      // Not mounted.
    }
    session?.stop();
    await running?.catch(() => {});
    await Deno.remove(dir).catch(() => {});
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`Timed out waiting for the ${what}`));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
