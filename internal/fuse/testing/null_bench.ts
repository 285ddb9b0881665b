/**
 * Throughput probe of the FUSE protocol layer alone (not a test): mounts a
 * file system with one large file whose reads return a preallocated buffer,
 * then `dd`s it through the mount in a child process, with and without
 * `tuneReadahead(…, 1024)`, and with O_DIRECT.
 *
 *   deno run -A internal/fuse/testing/null_bench.ts [GiB=2]
 *
 * Run as root. Prints one line per case: request sizes seen and GB/s.
 *
 * @module
 */

import {
  type Attr,
  Errno,
  type FileSystem,
  FsError,
  ROOT_INO,
  S_IFDIR,
  S_IFREG,
} from "../../fs/api.ts";
import { FuseSession } from "../session.ts";
import { mountFuse, tuneReadahead, unmount } from "../mount.ts";

const GIB = 1024 ** 3;
const sizeGiB = Number(Deno.args[0] ?? "2");
const FILE_SIZE = sizeGiB * GIB;
const FILE_INO = 2;
const SINK_INO = 3;
const chunk = new Uint8Array(1024 * 1024).fill(0x61);

function attr(ino: number): Attr {
  const now = Date.now();
  const dir = ino === ROOT_INO;
  return {
    ino,
    size: dir ? 0 : FILE_SIZE,
    blocks: dir ? 0 : FILE_SIZE / 512,
    atimeMs: now,
    mtimeMs: now,
    ctimeMs: now,
    mode: dir ? S_IFDIR | 0o755 : S_IFREG | 0o444,
    nlink: dir ? 2 : 1,
    uid: 0,
    gid: 0,
    blksize: 4096,
  };
}

/** Read sizes seen, to show what the kernel sent. */
const sizes = new Map<number, number>();

const nullFs: FileSystem = {
  lookup(_c, parent, name) {
    if (parent !== ROOT_INO || name !== "big") throw new FsError(Errno.ENOENT, "no");
    return Promise.resolve({
      ino: FILE_INO,
      generation: 0,
      attr: attr(FILE_INO),
      entryTtlMs: 60_000,
      attrTtlMs: 60_000,
    });
  },
  mknod: () =>
    Promise.resolve({
      ino: SINK_INO,
      generation: 0,
      attr: { ...attr(SINK_INO), size: 0, mode: S_IFREG | 0o644 },
      entryTtlMs: 0,
      attrTtlMs: 0,
    }),
  forget() {},
  getattr: (_c, ino) =>
    Promise.resolve({
      attr: ino === SINK_INO ? { ...attr(ino), size: 0 } : attr(ino),
      ttlMs: ino === SINK_INO ? 0 : 60_000,
    }),
  setattr: () => Promise.reject(new FsError(Errno.EPERM, "ro")),
  mkdir: () => Promise.reject(new FsError(Errno.EROFS, "ro")),
  unlink: () => Promise.reject(new FsError(Errno.EROFS, "ro")),
  rmdir: () => Promise.reject(new FsError(Errno.EROFS, "ro")),
  rename: () => Promise.reject(new FsError(Errno.EROFS, "ro")),
  open: () => Promise.resolve({ fh: 1, keepCache: false }),
  read(_c, _ino, _fh, offset, size) {
    sizes.set(size, (sizes.get(size) ?? 0) + 1);
    const n = Math.max(0, Math.min(size, FILE_SIZE - offset, chunk.byteLength));
    return Promise.resolve(chunk.subarray(0, n));
  },
  write(_c, _ino, _fh, _offset, data) {
    sizes.set(data.byteLength, (sizes.get(data.byteLength) ?? 0) + 1);
    return Promise.resolve(data.byteLength);
  },
  flush: () => Promise.resolve(),
  release: () => Promise.resolve(),
  fsync: () => Promise.resolve(),
  opendir: () => Promise.resolve({ fh: 1 }),
  readdir(_c, _ino, _fh, offset, _plus, add) {
    const all = [
      { name: ".", ino: ROOT_INO, type: S_IFDIR, nextOffset: 1 },
      { name: "..", ino: ROOT_INO, type: S_IFDIR, nextOffset: 2 },
      { name: "big", ino: FILE_INO, type: S_IFREG, nextOffset: 3 },
    ];
    for (const e of all.slice(offset)) if (!add(e)) break;
    return Promise.resolve();
  },
  releasedir: () => Promise.resolve(),
  statfs: () =>
    Promise.resolve({
      blocks: 0,
      bfree: 0,
      bavail: 0,
      files: 0,
      ffree: 0,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    }),
};

/** CPU seconds (user + system, all threads) this process has used so far. */
async function cpuSeconds(): Promise<number> {
  const stat = await Deno.readTextFile("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

let cpuStart = 0;

/** Runs dd with `args` and returns GB/s, counting the server's CPU from now. */
async function timedDd(args: string[]): Promise<number> {
  cpuStart = await cpuSeconds();
  const t0 = performance.now();
  const out = await new Deno.Command("dd", { args, stdout: "null", stderr: "piped" }).output();
  const secs = (performance.now() - t0) / 1000;
  if (!out.success) throw new Error(`dd failed: ${new TextDecoder().decode(out.stderr)}`);
  return FILE_SIZE / secs / 1e9;
}

async function dd(path: string, direct: boolean): Promise<number> {
  const args = [`if=${path}`, "of=/dev/null", "bs=1M", `count=${sizeGiB * 1024}`];
  if (direct) args.push("iflag=direct");
  // Drop the file's cached pages so every run goes through FUSE.
  await new Deno.Command("sh", { args: ["-c", "echo 1 > /proc/sys/vm/drop_caches"] }).output();
  return await timedDd(args);
}

function ddWrite(path: string): Promise<number> {
  return timedDd(["if=/dev/zero", `of=${path}`, "bs=1M", `count=${sizeGiB * 1024}`]);
}

/** Request sizes seen and the server's CPU time per GiB since the last dd started. */
async function seen(): Promise<string> {
  const cpu = (await cpuSeconds()) - cpuStart;
  const parts = [...sizes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([s, n]) => `${s / 1024} KiB×${n}`);
  sizes.clear();
  return `${parts.join(", ")}; server CPU ${(cpu / sizeGiB).toFixed(2)} s/GiB`;
}

const dir = await Deno.makeTempDir({ prefix: "s3csi-null-bench-" });
const fd = await mountFuse({ target: dir, fsname: "nullfs", subtype: "nullfs" });
const session = new FuseSession(fd, nullFs);
const running = session.run();
try {
  const file = `${dir}/big`;
  const results: string[] = [];
  results.push(
    `page cache, default readahead: ${(await dd(file, false)).toFixed(2)} GB/s (${await seen()})`,
  );
  await tuneReadahead(dir, 1024);
  results.push(
    `page cache, read_ahead_kb=1024: ${(await dd(file, false)).toFixed(2)} GB/s (${await seen()})`,
  );
  results.push(`O_DIRECT, bs=1M: ${(await dd(file, true)).toFixed(2)} GB/s (${await seen()})`);
  results.push(`write, bs=1M: ${(await ddWrite(`${dir}/sink`)).toFixed(2)} GB/s (${await seen()})`);
  for (const r of results) console.log(r);
} finally {
  unmount(dir);
  await running;
  await Deno.remove(dir);
}
