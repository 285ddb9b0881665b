/**
 * Open file handles of `S3FileSystem`: a read handle wraps the prefetching
 * reader pinned at open; a write handle owns the file's `Upload` and decides
 * when it completes (SEMANTICS.md, Writing):
 *
 * - `close` (flush) from the opening process completes the upload, unless
 *   the file is empty or the close comes from another process: then
 *   completion waits for release, which keeps `touch`, shell redirections
 *   and `dd` working;
 * - `fsync` completes it at once; release completes whatever is left, and
 *   its errors are only logged, since nobody sees them.
 *
 * Completion and failure are reported to the inode table, which moves the
 * inode (and the mkdirs above it) from local to remote state.
 *
 * `OpenFiles` holds what all open files of a mount share: the read memory
 * budget, the pool of part buffers, the optional disk data cache and the
 * cap on files open for writing (SEMANTICS.md, Writing: Memory).
 *
 * @module
 */

import { Errno, fail } from "./api.ts";
import { type FsConfig, readBudgetBytes, writeBudgetBytes } from "./config.ts";
import { WriteMemory } from "./write_memory.ts";
import type { Inode, InodeTable } from "./inode_table.ts";
import {
  BufferPool,
  createReader,
  type DataCache,
  MemoryBudget,
  type ReadSource,
} from "./prefetch/mod.ts";
import { Upload, type UploadLedger } from "./upload.ts";
import { log } from "../log/mod.ts";
import { watch } from "../metrics/mod.ts";
import { isS3Error, type ObjectClient, S3Error } from "../s3/object_client.ts";

const fsLog = log.with({ component: "fs" });

/**
 * A read handle. One opened on the stat a lookup has just confirmed (no HEAD
 * of its own) may re-pin once: if its first GET finds the object changed or
 * gone before any byte was served, it asks S3 again and continues with the
 * object there now, as if open had asked (SEMANTICS.md S6). Once a byte is
 * served, a change is ESTALE as for every handle, so versions never mix.
 */
export class ReadHandle {
  readonly kind = "read";
  #reader: ReadSource;
  #served = false;
  #repin: (() => Promise<ReadSource | null>) | null;
  #repinning: Promise<ReadSource | null> | null = null;

  constructor(
    readonly inode: Inode,
    reader: ReadSource,
    repin: (() => Promise<ReadSource | null>) | null = null,
  ) {
    this.#reader = reader;
    this.#repin = repin;
  }

  async read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.#served || !this.#repin) return this.#reader.read(offset, size, signal);
    const r = this.#reader;
    try {
      const bytes = await r.read(offset, size, signal);
      // Bytes of the version this handle has left would mix with the new one.
      if (r !== this.#reader) throw new S3Error("PreconditionFailed", "re-pinned meanwhile");
      this.#served = true;
      return bytes;
    } catch (err) {
      if (!isS3Error(err, "PreconditionFailed") && !isS3Error(err, "NoSuchKey")) throw err;
      if (this.#served || !this.#repin) throw err;
      this.#repinning ??= this.#repin();
      const fresh = await this.#repinning;
      this.#repinning = null;
      if (!fresh || this.#served) throw err;
      if (this.#reader === r) {
        this.#repin = null;
        r.close();
        this.#reader = fresh;
      } else if (fresh !== this.#reader) fresh.close();
      return this.read(offset, size, signal);
    }
  }

  /** Stops the reader (at unmount: nothing to report). */
  dispose(): void {
    this.#reader.close();
  }

  close(pool: BufferPool): void {
    this.#reader.close();
    // What the prefetcher did for this handle: the first thing to look at when reads are slow.
    const { requests, bytesRequested, resets, sideReads, reclaims } = this.#reader.stats();
    fsLog.debug("Read handle closed", {
      key: this.inode.key,
      requests,
      bytesRequested,
      resets,
      sideReads,
      reclaims,
      pool: pool.stats(),
    });
  }
}

/**
 * A read handle a predecessor server opened (takeover): it serves the
 * version the predecessor pinned, or none. The first read asks S3 once; if
 * the object changed or went in the meantime, every read is ESTALE, as for
 * any handle whose object changed.
 */
export class ResumedReadHandle {
  readonly kind = "read";
  #handle: Promise<ReadHandle> | null = null;

  constructor(
    readonly inode: Inode,
    readonly version: string,
    readonly open: () => Promise<ReadHandle>,
  ) {}

  async read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.#handle ??= this.open();
    return (await this.#handle).read(offset, size, signal);
  }

  dispose(): void {
    this.#handle?.then((h) => h.dispose(), () => {});
  }

  close(pool: BufferPool): void {
    this.#handle?.then((h) => h.close(pool), () => {});
  }
}

/**
 * A write handle whose upload died with a predecessor server (takeover):
 * what it had written is gone, so writes, flushes and fsyncs fail with EIO
 * and nothing is uploaded.
 */
export class LostWriteHandle {
  readonly kind = "lost";
  constructor(readonly inode: Inode) {}

  fail(): never {
    fail(
      Errno.EIO,
      `Cannot write "${this.inode.key}": its upload was lost when the mount server was replaced`,
    );
  }
}

export class WriteHandle {
  readonly kind = "write";
  readonly inode: Inode;
  readonly upload: Upload;
  /** The opening process: its close completes the upload. */
  readonly #pid: number;
  readonly #table: InodeTable;
  /** Whether the application closed a descriptor of this handle. */
  #flushed = false;

  constructor(inode: Inode, upload: Upload, pid: number, table: InodeTable) {
    this.inode = inode;
    this.upload = upload;
    this.#pid = pid;
    this.#table = table;
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    try {
      return await this.upload.write(offset, data);
    } catch (err) {
      this.#table.uploadFailed(this.inode, this.upload);
      throw err;
    }
  }

  async flush(pid: number): Promise<void> {
    this.#flushed = true;
    const u = this.upload;
    // Throws the failure once its abort is over, and the inode lets go of the upload.
    if (u.state === "failed") return await this.complete();
    if (u.state === "done") return;
    // close() from another process (a dup'd or inherited descriptor) or
    // of an empty file defers the upload to release: see SEMANTICS.md.
    if (pid !== this.#pid || u.size === 0) return;
    await this.complete();
  }

  /** Completes the upload (fsync, or a flush that does not defer). */
  async complete(): Promise<void> {
    let result: { etag: string; size: number };
    try {
      result = await this.upload.complete();
    } catch (err) {
      this.#table.uploadFailed(this.inode, this.upload);
      throw err;
    }
    this.#table.uploaded(this.inode, this.upload, result);
  }

  /** The last descriptor is gone: completes what is left, logging a failure. */
  async release(): Promise<void> {
    const state = this.upload.state;
    if (state !== "open" && state !== "completing") return;
    try {
      await this.complete();
    } catch (err) {
      fsLog.warn("Upload failed at release", { key: this.inode.key, error: err });
    }
  }

  /**
   * At unmount: completes an upload whose handle the application already
   * closed (the release that would have completed it will not come), aborts
   * one still open, so no partial object is created, and waits for the abort
   * of one that failed.
   */
  async unmount(): Promise<void> {
    const state = this.upload.state;
    if (state === "open" && this.#flushed) await this.complete().catch(() => {});
    else if (state === "open" || state === "failed") {
      await this.upload.abort("file system unmounted with the file still open");
    }
  }
}

export interface OpenFilesOptions {
  client: ObjectClient;
  config: FsConfig;
  table: InodeTable;
  /** The mount's disk data cache, closed by `destroy()`. */
  cache: DataCache | undefined;
  /** Told of multipart uploads (the takeover journal). */
  ledger?: UploadLedger;
}

export class OpenFiles {
  readonly #o: OpenFilesOptions;
  readonly #budget: MemoryBudget;
  /** Part buffers reused across reads (inside the budget: at most 8 buffers, 72 MiB). */
  readonly #pool: BufferPool;
  /** The part buffers of every upload, reserved before they are allocated. */
  readonly #writeMemory: WriteMemory;

  constructor(o: OpenFilesOptions) {
    this.#o = o;
    this.#budget = new MemoryBudget(readBudgetBytes(o.config));
    this.#pool = new BufferPool(undefined, undefined, undefined, this.#budget);
    this.#writeMemory = new WriteMemory(writeBudgetBytes(o.config));
    const budget = this.#budget;
    const unwatch = [
      watch("memoryUsed", () => budget.reserved),
      watch("memoryLimit", () => budget.maxBytes),
    ];
    this.#unwatch = () => unwatch.forEach((f) => f());
  }

  readonly #unwatch: () => void;

  /**
   * A read handle pinned to the ETag and size `inode` has now. `repin`: the
   * stat comes from a lookup, not from a HEAD of this open, so the handle may
   * re-pin once (see `ReadHandle`).
   */
  reader(inode: Inode, repin = false): ReadHandle {
    const source = () => this.#source(inode);
    if (!repin) return new ReadHandle(inode, source());
    const { client, config: c } = this.#o;
    return new ReadHandle(inode, source(), async () => {
      const info = await client.headObject(c.bucket, inode.key);
      if (!info) return null;
      this.#o.table.setStat(inode, info);
      return source();
    });
  }

  #source(inode: Inode): ReadSource {
    const { client, config: c, cache } = this.#o;
    return createReader({
      client,
      bucket: c.bucket,
      key: inode.key,
      etag: inode.etag!,
      size: inode.size,
      partSize: c.readPartSize,
      budget: this.#budget,
      cache,
      pool: this.#pool,
    });
  }

  /** A write handle for a new file (`isNew`: created with If-None-Match) or an overwrite. */
  writer(inode: Inode, isNew: boolean, pid: number): WriteHandle {
    const { client, config: c, table } = this.#o;
    const upload = new Upload({
      client,
      bucket: c.bucket,
      key: inode.key,
      partSize: c.writePartSize,
      ifNoneMatch: isNew,
      // Extra parts in flight borrow from the read budget's unused share.
      spare: this.#budget,
      memory: this.#writeMemory,
      put: { storageClass: c.storageClass, sse: c.sse, sseKmsKeyId: c.sseKmsKeyId },
      ledger: this.#o.ledger,
    });
    table.startWriting(inode, upload);
    return new WriteHandle(inode, upload, pid, table);
  }

  /**
   * A predecessor's read handle on `inode`, pinned to `version`: its first
   * read checks that S3 still has that version (else ESTALE).
   */
  resumedReader(inode: Inode, version: string): ResumedReadHandle {
    const { client, config: c } = this.#o;
    return new ResumedReadHandle(inode, version, async () => {
      const info = await client.headObject(c.bucket, inode.key);
      if (!info || info.etag !== version) {
        fail(
          Errno.ESTALE,
          `Cannot read "${inode.key}": it changed since it was opened (before the mount server was replaced)`,
        );
      }
      this.#o.table.setStat(inode, info);
      return new ReadHandle(inode, this.#source(inode));
    });
  }

  /** The kernel released `h`. */
  async release(h: ReadHandle | ResumedReadHandle | WriteHandle): Promise<void> {
    if (h.kind === "read") {
      h.close(this.#pool);
      return;
    }
    await h.release();
  }

  /** At unmount: settles every upload still open (see `WriteHandle.unmount`), then closes the cache. */
  async destroy(handles: (ReadHandle | ResumedReadHandle | WriteHandle)[]): Promise<void> {
    const work: Promise<void>[] = [];
    for (const h of handles) {
      if (h.kind === "write") work.push(h.unmount());
      else h.dispose();
    }
    await Promise.all(work);
    this.#unwatch();
    // Waits for the cache's background writes before removing its directory.
    await this.#o.cache?.close();
  }
}
