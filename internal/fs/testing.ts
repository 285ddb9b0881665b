/**
 * Test helpers: an `S3FileSystem` over a `MemoryObjectClient`, driven the way
 * the kernel drives it (lookup per path component, mknod + open + write +
 * flush + release for a new file, opendir + readdir loops with a small reply
 * buffer). Used by the unit tests and the model test; not by production code.
 *
 * @module
 */

import {
  type DirEntry,
  Errno,
  FsError,
  type Ino,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  type RequestContext,
  ROOT_INO,
  S_IFREG,
} from "./api.ts";
import { defaultFsConfig, type FsConfig } from "./config.ts";
import { S3FileSystem, type S3FileSystemOptions } from "./s3_file_system.ts";
import { MemoryObjectClient } from "../s3/memory_object_client.ts";

export const BUCKET = "test-bucket";

export function ctx(pid = 100): RequestContext {
  return { uid: 0, gid: 0, pid, signal: new AbortController().signal };
}

export async function mount(
  overrides: Partial<FsConfig> = {},
  client?: MemoryObjectClient,
  options: S3FileSystemOptions = {},
): Promise<{ fs: S3FileSystem; client: MemoryObjectClient }> {
  const c = client ?? new MemoryObjectClient({ minPartSize: 1 });
  if (!client) await c.createBucket(BUCKET);
  const fs = new S3FileSystem(c, defaultFsConfig(BUCKET, overrides), options);
  return { fs, client: c };
}

/** Another client writes `key`: the mount learns of it only through S3. */
export async function put(client: MemoryObjectClient, key: string, body = ""): Promise<void> {
  await client.putObjectOutOfBand(BUCKET, key, body);
}

/** Listed entries as names, directories with a trailing "/". */
export const names = (l: { name: string; dir: boolean }[]): string[] =>
  l.map((e) => (e.dir ? e.name + "/" : e.name));

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The errno an operation failed with, or 0 when it succeeded. */
export async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof FsError) return err.errno;
    throw err;
  }
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

/** Resolves `path` component by component, like the kernel (one lookup reference each). */
export async function resolve(fs: S3FileSystem, path: string): Promise<Ino> {
  let ino = ROOT_INO;
  for (const part of split(path)) ino = (await fs.lookup(ctx(), ino, part)).ino;
  return ino;
}

export async function parentOf(fs: S3FileSystem, path: string): Promise<[Ino, string]> {
  const parts = split(path);
  const name = parts.pop()!;
  return [await resolve(fs, parts.join("/")), name];
}

/** open(O_CREAT|O_WRONLY) of a new file, writes in `chunk`-sized pieces, close. */
export async function writeFile(
  fs: S3FileSystem,
  path: string,
  data: Uint8Array | string,
  chunk = 4096,
): Promise<void> {
  const bytes = typeof data === "string" ? enc(data) : data;
  const [parent, name] = await parentOf(fs, path);
  const { ino } = await fs.mknod(ctx(), parent, name, S_IFREG | 0o644, 0o022);
  const { fh } = await fs.open(ctx(), ino, O_WRONLY);
  try {
    for (let at = 0; at < bytes.byteLength; at += chunk) {
      await fs.write(ctx(), ino, fh, at, bytes.subarray(at, at + chunk));
    }
    await fs.flush(ctx(), ino, fh);
  } finally {
    await fs.release(ctx(), ino, fh, 0);
  }
}

/** open(O_WRONLY|O_TRUNC) of an existing file, write, close. */
export async function overwriteFile(fs: S3FileSystem, path: string, data: string): Promise<void> {
  const ino = await resolve(fs, path);
  const { fh } = await fs.open(ctx(), ino, O_WRONLY | O_TRUNC);
  try {
    if (data.length > 0) await fs.write(ctx(), ino, fh, 0, enc(data));
    await fs.flush(ctx(), ino, fh);
  } finally {
    await fs.release(ctx(), ino, fh, 0);
  }
}

export async function readFile(fs: S3FileSystem, path: string, chunk = 4096): Promise<string> {
  const ino = await resolve(fs, path);
  const { fh } = await fs.open(ctx(), ino, O_RDONLY);
  try {
    const parts: Uint8Array[] = [];
    for (let at = 0;; at += chunk) {
      // Copied: read() returns views of buffers the file system reuses once we yield.
      const got = (await fs.read(ctx(), ino, fh, at, chunk)).slice();
      parts.push(got);
      if (got.byteLength < chunk) break;
    }
    return parts.map(dec).join("");
  } finally {
    await fs.release(ctx(), ino, fh, 0);
  }
}

/**
 * Lists a directory through opendir/readdir/releasedir with a reply buffer
 * of `perCall` entries, returning names (without "." and "..") in output
 * order with their kind.
 */
export async function listDir(
  fs: S3FileSystem,
  path: string,
  opts: { plus?: boolean; perCall?: number } = {},
): Promise<{ name: string; dir: boolean }[]> {
  const ino = await resolve(fs, path);
  return listIno(fs, ino, opts);
}

export async function listIno(
  fs: S3FileSystem,
  ino: Ino,
  opts: { plus?: boolean; perCall?: number } = {},
): Promise<{ name: string; dir: boolean }[]> {
  const plus = opts.plus ?? false;
  const perCall = opts.perCall ?? 7;
  const { fh } = await fs.opendir(ctx(), ino, 0);
  const out: { name: string; dir: boolean }[] = [];
  try {
    let offset = 0;
    for (;;) {
      const batch: DirEntry[] = [];
      await fs.readdir(ctx(), ino, fh, offset, plus, (e) => {
        if (batch.length >= perCall) return false;
        batch.push(e);
        return true;
      });
      if (batch.length === 0) break;
      for (const e of batch) {
        if (e.name !== "." && e.name !== "..") {
          out.push({ name: e.name, dir: (e.type & 0o170000) === 0o040000 });
          // Mirror the kernel: readdirplus entries are references it must forget.
          if (plus && e.entry) fs.forget(e.ino, 1);
        }
      }
      offset = batch[batch.length - 1]!.nextOffset;
    }
  } finally {
    await fs.releasedir(ctx(), ino, fh);
  }
  return out;
}

export { Errno };
