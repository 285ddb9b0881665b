/**
 * Small helpers shared by integration tests: free ports, temporary
 * directories on disk, a timeout guard for promises, and the driver's FUSE
 * mounts under a directory (to assert on, and to clean up).
 *
 * @module
 */
import { readMountInfo } from "../../internal/fuse/mod.ts";

/** Mount points of the driver's FUSE file systems (`fuse.s3csi`) under `dir`. */
export async function fuseMountsUnder(dir: string): Promise<string[]> {
  return (await readMountInfo()).filter((m) => m.fstype === "fuse.s3csi")
    .map((m) => m.mountPoint).filter((m) => m.startsWith(dir));
}

/**
 * Takes down every driver FUSE mount under `dir`, the innermost (latest)
 * first: its connection is aborted (fusectl), so that no caller, this test
 * process included, stays waiting on a connection that a keeper fd keeps
 * alive with no server, then it is lazily unmounted.
 */
export async function detachFuseMountsUnder(dir: string): Promise<void> {
  const mounts = (await readMountInfo()).filter((m) =>
    m.fstype === "fuse.s3csi" && m.mountPoint.startsWith(dir)
  );
  for (const m of mounts.reverse()) {
    await abortFuseConnection(m.minor);
    await new Deno.Command("umount", { args: ["-l", m.mountPoint] }).output();
  }
}

const FUSECTL = "/sys/fs/fuse/connections";

/** Aborts FUSE connection `id` (the mount's minor device number); best effort. */
async function abortFuseConnection(id: number): Promise<void> {
  const abort = `${FUSECTL}/${id}/abort`;
  if (!(await Deno.stat(`${FUSECTL}/${id}`).then(() => true, () => false))) {
    await new Deno.Command("mount", { args: ["-t", "fusectl", "none", FUSECTL] }).output()
      .catch(() => {});
  }
  await Deno.writeTextFile(abort, "1").catch(() => {});
}

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * The port is found by binding port 0 and closing the listener, so another
 * process can still take it before the caller binds; callers that start a
 * server retry with a new port when the bind fails.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Creates a fresh directory under /var/tmp (disk-backed, unlike /tmp on some
 * hosts, which matters for servers that use O_DIRECT) and returns its path.
 */
export async function tempDir(prefix: string): Promise<string> {
  const base = "/var/tmp";
  try {
    await Deno.mkdir(base, { recursive: true });
    return await Deno.makeTempDir({ dir: base, prefix });
  } catch {
    return await Deno.makeTempDir({ prefix });
  }
}

/** Rejects with a descriptive error if `promise` does not settle within `ms` milliseconds. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Random lowercase hex of `bytes` random bytes, for names and generated credentials. */
export function randomHex(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The pids of the processes whose command line contains `needle` (`pgrep -f`). */
export async function pids(needle: string): Promise<number[]> {
  const r = await new Deno.Command("pgrep", { args: ["-f", needle], stdout: "piped" }).output();
  return new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).map(Number);
}
