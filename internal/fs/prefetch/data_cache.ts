/**
 * The optional local disk cache for object data (`--cache DIR`).
 *
 * Objects are cached in fixed-size blocks (1 MiB by default) keyed by
 * (bucket, key, ETag, block index): a new version of an object has a new ETag,
 * so stale blocks are never served, only evicted in time. Each block is one
 * file in a per-mount subdirectory of DIR, wiped when the cache is created and
 * again when it is closed, so the in-memory index is the whole truth about
 * what is on disk and a lookup that misses never touches the disk.
 *
 * Every file starts with a header holding a magic number, the block identity,
 * the data length and a CRC32 of the data. A block whose header, identity,
 * length or checksum does not match is a miss (and is removed), never bad data.
 * Files are written under a temporary name and renamed into place, so a reader
 * never sees a half-written block under its final name.
 *
 * Eviction is least-recently-used over the index, keeping the bytes on disk
 * (headers included) at or under `maxBytes`. A block that cannot be written
 * (the disk full before `maxBytes`) is simply not cached: reads go on from
 * S3, and one warning a minute counts the failures.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { join } from "node:path";
import { errorMessage } from "../../errors/mod.ts";
import { log } from "../../log/mod.ts";
import { cacheLookups } from "../../metrics/mod.ts";

/** Which object version a block belongs to. */
export interface CachedObjectId {
  bucket: string;
  key: string;
  etag: string;
}

export interface DataCacheStats {
  hits: number;
  misses: number;
  /** Blocks found on disk but rejected by the integrity check. */
  corrupt: number;
  writes: number;
  /** Blocks not cached because too many writes were already in flight. */
  skippedWrites: number;
  /** Blocks not cached because the write failed (a full or broken disk). */
  failedWrites: number;
  evictions: number;
  /** Bytes on disk, headers included. */
  bytes: number;
  blocks: number;
  maxBytes: number;
}

export interface DataCache {
  /** Size of every block but an object's last one. */
  readonly blockSize: number;
  /** The per-mount directory holding the block files. */
  readonly dir: string;
  /** The data of block `index` (`blockSize` bytes, fewer for an object's last block), or null on a miss. */
  get(object: CachedObjectId, index: number): Promise<Uint8Array | null>;
  /** Stores a block in the background; never rejects (a failed write is just not cached). */
  put(object: CachedObjectId, index: number, data: Uint8Array): Promise<void>;
  stats(): DataCacheStats;
  /** Resolves once every block read, write and file removal started so far has finished. */
  idle(): Promise<void>;
  /**
   * Refuses new work, waits until idle, then removes the directory: once it
   * resolves, nothing of the cache touches the disk any more.
   */
  close(): Promise<void>;
}

export interface DataCacheOptions {
  /** The cache directory given by the user; a per-mount subdirectory is created inside it. */
  dir: string;
  /** Upper bound for the bytes on disk, headers included. */
  maxBytes: number;
  /** Block size in bytes; 1 MiB by default. */
  blockSize?: number;
  /**
   * Names the per-mount subdirectory (`mount-<mountId>`). Pass a value stable
   * across restarts of the same mount (e.g. a hash of the mount point) so a
   * restart wipes what a crashed predecessor left; random by default.
   */
  mountId?: string;
}

const DEFAULT_BLOCK_SIZE = 1024 * 1024;
const MAGIC = 0x53334342; // "S3CB"
const VERSION = 1;
const FIXED_HEADER = 16;
/** Bytes of block writes allowed in flight; beyond it blocks are not cached (a slow disk must not hoard memory). */
const MAX_PENDING_WRITE_BYTES = 64 * 1024 * 1024;
/** A full disk fails every block: one warning per interval says so, with the count. */
const WRITE_WARNING_INTERVAL_MS = 60_000;

export async function createDataCache(opts: DataCacheOptions): Promise<DataCache> {
  const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new RangeError(`Cannot create data cache: invalid block size "${blockSize}"`);
  }
  if (!Number.isFinite(opts.maxBytes) || opts.maxBytes < 0) {
    throw new RangeError(`Cannot create data cache: invalid maximum size "${opts.maxBytes}"`);
  }
  const mountId = opts.mountId ?? crypto.randomUUID();
  if (!/^[A-Za-z0-9._-]+$/.test(mountId) || mountId === "." || mountId === "..") {
    throw new RangeError(`Cannot create data cache: invalid mount id "${mountId}"`);
  }
  const dir = join(opts.dir, `mount-${mountId}`);
  await removeTree(dir);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return new DiskDataCache(dir, opts.maxBytes, blockSize);
}

interface Entry {
  path: string;
  size: number;
}

const encoder = new TextEncoder();

class DiskDataCache implements DataCache {
  readonly dir: string;
  readonly blockSize: number;
  readonly #maxBytes: number;
  /** Identity → file, in least-recently-used-first order (Map keeps insertion order). */
  readonly #index = new Map<string, Entry>();
  readonly #pending = new Set<Promise<unknown>>();
  #bytes = 0;
  #seq = 0;
  #closed = false;
  #hits = 0;
  #misses = 0;
  #corrupt = 0;
  #writes = 0;
  #skippedWrites = 0;
  #failedWrites = 0;
  #failedSinceWarning = 0;
  #lastWarning = -Infinity;
  #pendingWriteBytes = 0;
  #evictions = 0;
  readonly #log = log.with({ component: "data_cache" });

  constructor(dir: string, maxBytes: number, blockSize: number) {
    this.dir = dir;
    this.#maxBytes = maxBytes;
    this.blockSize = blockSize;
  }

  async get(object: CachedObjectId, index: number): Promise<Uint8Array | null> {
    const id = identity(object, index);
    const entry = this.#index.get(id);
    if (!entry || this.#closed) {
      this.#misses++;
      cacheLookups.inc({ result: "miss" });
      return null;
    }
    // Touch: move to the most-recently-used end.
    this.#index.delete(id);
    this.#index.set(id, entry);
    let buf: Uint8Array;
    try {
      const read = Deno.readFile(entry.path);
      this.#track(read);
      buf = await read;
    } catch {
      // Evicted or removed under us.
      this.#dropIfCurrent(id, entry);
      this.#misses++;
      cacheLookups.inc({ result: "miss" });
      return null;
    }
    const data = decodeBlock(buf, id);
    if (data === null || data.length > this.blockSize) {
      this.#corrupt++;
      this.#misses++;
      cacheLookups.inc({ result: "miss" });
      this.#log.warn("Cache block failed its integrity check", { path: entry.path });
      this.#dropIfCurrent(id, entry);
      return null;
    }
    this.#hits++;
    cacheLookups.inc({ result: "hit" });
    return data;
  }

  put(object: CachedObjectId, index: number, data: Uint8Array): Promise<void> {
    if (this.#closed || data.length > this.blockSize) return Promise.resolve();
    if (this.#pendingWriteBytes + data.length > MAX_PENDING_WRITE_BYTES) {
      this.#skippedWrites++;
      return Promise.resolve();
    }
    const id = identity(object, index);
    const file = encodeBlock(id, data);
    if (file.length > this.#maxBytes) return Promise.resolve();
    this.#pendingWriteBytes += file.length;
    const p = this.#write(id, file).finally(() => this.#pendingWriteBytes -= file.length);
    this.#track(p);
    return p;
  }

  stats(): DataCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      corrupt: this.#corrupt,
      writes: this.#writes,
      skippedWrites: this.#skippedWrites,
      failedWrites: this.#failedWrites,
      evictions: this.#evictions,
      bytes: this.#bytes,
      blocks: this.#index.size,
      maxBytes: this.#maxBytes,
    };
  }

  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.idle();
    this.#index.clear();
    this.#bytes = 0;
    await removeTree(this.dir);
  }

  async #write(id: string, file: Uint8Array): Promise<void> {
    const n = ++this.#seq;
    const path = join(this.dir, `b${n}`);
    const tmp = `${path}.tmp`;
    try {
      await Deno.writeFile(tmp, file, { mode: 0o600 });
      await Deno.rename(tmp, path);
    } catch (err) {
      this.#remove(tmp);
      if (this.#closed) return;
      this.#failedWrites++;
      this.#failedSinceWarning++;
      const now = performance.now();
      if (now - this.#lastWarning >= WRITE_WARNING_INTERVAL_MS) {
        this.#log.warn("Cannot write cache blocks: reading without caching them", {
          path,
          error: errorMessage(err),
          failed: this.#failedSinceWarning,
        });
        this.#lastWarning = now;
        this.#failedSinceWarning = 0;
      }
      return;
    }
    if (this.#closed) return;
    const old = this.#index.get(id);
    if (old) this.#dropIfCurrent(id, old);
    this.#index.set(id, { path, size: file.length });
    this.#bytes += file.length;
    this.#writes++;
    this.#evict();
  }

  #evict(): void {
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#index.entries().next();
      if (oldest.done) break;
      const [id, entry] = oldest.value;
      this.#dropIfCurrent(id, entry);
      this.#evictions++;
    }
  }

  /** Forgets `id` if it still maps to `entry`, and removes the file. */
  #dropIfCurrent(id: string, entry: Entry): void {
    if (this.#index.get(id) !== entry) return;
    this.#index.delete(id);
    this.#bytes -= entry.size;
    this.#remove(entry.path);
  }

  #remove(path: string): void {
    this.#track(Deno.remove(path).catch(() => {}));
  }

  /** Counts `p` as background work until it settles (`idle()` and `close()` wait for it). */
  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    p.then(() => this.#pending.delete(p), () => this.#pending.delete(p));
  }
}

function identity(object: CachedObjectId, index: number): string {
  return `${object.bucket}\0${object.key}\0${object.etag}\0${index}`;
}

function encodeBlock(id: string, data: Uint8Array): Uint8Array {
  const idBytes = encoder.encode(id);
  const file = new Uint8Array(FIXED_HEADER + idBytes.length + data.length);
  const view = new DataView(file.buffer);
  view.setUint32(0, MAGIC);
  view.setUint16(4, VERSION);
  view.setUint16(6, idBytes.length);
  view.setUint32(8, data.length);
  view.setUint32(12, crc32(data) >>> 0);
  file.set(idBytes, FIXED_HEADER);
  file.set(data, FIXED_HEADER + idBytes.length);
  return file;
}

/** The block's data if `buf` is an intact block for `id`, else null. */
function decodeBlock(buf: Uint8Array, id: string): Uint8Array | null {
  if (buf.length < FIXED_HEADER) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0) !== MAGIC || view.getUint16(4) !== VERSION) return null;
  const idLength = view.getUint16(6);
  const dataLength = view.getUint32(8);
  if (buf.length !== FIXED_HEADER + idLength + dataLength) return null;
  const idBytes = encoder.encode(id);
  if (idBytes.length !== idLength) return null;
  for (let i = 0; i < idLength; i++) {
    if (buf[FIXED_HEADER + i] !== idBytes[i]) return null;
  }
  const data = buf.subarray(FIXED_HEADER + idLength);
  if ((crc32(data) >>> 0) !== view.getUint32(12)) return null;
  return data;
}

async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
