/**
 * The upload behind one write handle.
 *
 * Writes must be sequential from offset 0. Data fills a part buffer (grown
 * by doubling, so small files never allocate a whole part); when a buffer
 * reaches `partSize` it is sent as the next part of a multipart upload while
 * the following part fills. The handle's own memory is two parts (one
 * filling, one uploading), reserved from the mount's `memory` before each
 * buffer is allocated or grown, so that a write waits (back-pressure) while
 * the writers' memory is in use; up to `maxInFlight` parts upload at once when
 * `spare` lends the memory for the extra ones, otherwise a full part waits
 * for the previous send. A file smaller than one part
 * is sent as a single PutObject at completion. Nothing is visible in S3
 * before `complete()`, and a failed upload is aborted, so a partial object
 * never appears.
 *
 * Failures are sticky: once the upload failed every later call fails with
 * the same errno. A failure (even one found by a part in the background)
 * starts the abort of the multipart upload; `complete()` and `abort()`
 * resolve only once that abort is over, so whoever waits for them (close,
 * unmount) never leaves an upload behind that is still being cleaned up.
 *
 * @module
 */

import { Errno, FsError } from "./api.ts";
import { errnoOf } from "./errno.ts";
import type { CompletedPart, ObjectClient, PutOptions } from "../s3/object_client.ts";
import { log } from "../log/mod.ts";
import type { WriteMemory } from "./write_memory.ts";

const MAX_PARTS = 10_000;
const INITIAL_BUFFER = 64 * 1024;

export type UploadState = "open" | "completing" | "done" | "failed";

export interface UploadOptions {
  client: ObjectClient;
  bucket: string;
  key: string;
  partSize: number;
  /** Fail instead of replacing an object created meanwhile (new files). */
  ifNoneMatch: boolean;
  put: Omit<PutOptions, "ifNoneMatch" | "signal">;
  /**
   * Memory to borrow for parts in flight beyond the handle's own one: with
   * it a single writer keeps several uploads going (one round trip per part
   * otherwise caps it), and without spare memory it falls back to one.
   */
  spare?: { tryReserve(bytes: number): boolean; release(bytes: number): void };
  /** The writers' memory the part buffers are reserved from (unbounded without it). */
  memory?: Pick<WriteMemory, "reserve" | "release">;
  /** Most parts uploading at once for this handle. Default 4. */
  maxInFlight?: number;
  /** Told of each multipart upload this upload creates and ends (the takeover journal). */
  ledger?: UploadLedger;
}

/**
 * Where multipart uploads are accounted for while they exist, so that a
 * server taking over a dead one's mount can abort what it left: `started`
 * once S3 gave the upload ID, `ended` once it is completed or aborted.
 */
export interface UploadLedger {
  started(uploadId: string, key: string): void;
  ended(uploadId: string): void;
}

const DEFAULT_MAX_IN_FLIGHT = 4;

export class Upload {
  readonly #o: UploadOptions;
  #state: UploadState = "open";
  #size = 0;
  #buf: Uint8Array | null = null;
  #fill = 0;
  /** Bytes of `memory` reserved for `#buf`: the small first buffer, or a whole part. */
  #bufReserved = 0;
  #uploadId: Promise<string> | null = null;
  #parts: Promise<CompletedPart>[] = [];
  /** Parts uploading now; each settles (never rejects) when its part is done. */
  readonly #inflight = new Set<Promise<void>>();
  #queue: Promise<unknown> = Promise.resolve();
  #failure: FsError | null = null;
  /** The abort that follows the failure, once failed. */
  #failing: Promise<void> | null = null;
  #completion: Promise<{ etag: string; size: number }> | null = null;

  constructor(opts: UploadOptions) {
    this.#o = opts;
  }

  get state(): UploadState {
    return this.#state;
  }

  /** Bytes accepted so far. */
  get size(): number {
    return this.#size;
  }

  get failure(): FsError | null {
    return this.#failure;
  }

  /** Appends `data` at `offset`; writes on one handle are serialized. */
  write(offset: number, data: Uint8Array): Promise<number> {
    const run = this.#queue.then(() => this.#write(offset, data));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(offset: number, data: Uint8Array): Promise<number> {
    if (this.#failure) throw this.#failure;
    if (this.#state !== "open") {
      throw new FsError(Errno.EBADF, `Cannot write "${this.#o.key}": upload already completed`);
    }
    if (offset !== this.#size) {
      await this.#fail(
        new FsError(
          Errno.EINVAL,
          `Cannot write "${this.#o.key}": out-of-order write, expected offset "${this.#size}" but got "${offset}"`,
        ),
      );
      throw this.#failure!;
    }
    if (offset + data.byteLength > MAX_PARTS * this.#o.partSize) {
      await this.#fail(
        new FsError(
          Errno.EFBIG,
          `Cannot write "${this.#o.key}": object would exceed "${MAX_PARTS}" parts of "${this.#o.partSize}" bytes`,
        ),
      );
      throw this.#failure!;
    }
    let at = 0;
    while (at < data.byteLength) {
      const room = await this.#ensureRoom(data.byteLength - at);
      if (this.#failure) throw this.#failure;
      const n = Math.min(room, data.byteLength - at);
      this.#buf!.set(data.subarray(at, at + n), this.#fill);
      this.#fill += n;
      this.#size += n;
      at += n;
      if (this.#fill === this.#o.partSize) await this.#sendPart();
      if (this.#failure) throw this.#failure;
    }
    return data.byteLength;
  }

  /**
   * Makes room for up to `want` more bytes in the part buffer, reserving
   * its memory first (which may wait); returns the room.
   */
  async #ensureRoom(want: number): Promise<number> {
    const part = this.#o.partSize;
    const have = this.#buf?.byteLength ?? 0;
    let cap = have;
    if (!this.#buf) {
      // Small files start small; once a part has gone out the file is large, so skip the regrowth copies.
      cap = Math.min(part, this.#parts.length > 0 ? part : Math.max(INITIAL_BUFFER, want));
    }
    while (cap - this.#fill < want && cap < part) cap = Math.min(cap * 2, part);
    if (cap === have) return have - this.#fill;
    // Past the small first buffer a whole part is reserved at once: a
    // writer holding memory then needs no more to fill and send its part,
    // so writers waiting on each other's growth cannot deadlock.
    const first = !this.#buf && this.#parts.length === 0;
    const more = (first && cap <= INITIAL_BUFFER ? cap : part) - this.#bufReserved;
    if (more > 0) {
      try {
        await this.#o.memory?.reserve(more, this.#o.key, first);
      } catch (err) {
        await this.#fail(err);
        throw this.#failure!;
      }
      this.#bufReserved += more;
    }
    if (this.#failure) {
      this.#dropBuffer();
      throw this.#failure;
    }
    const grown = new Uint8Array(cap);
    if (this.#buf) grown.set(this.#buf.subarray(0, this.#fill));
    this.#buf = grown;
    return cap - this.#fill;
  }

  /** Lets go of the part buffer and its memory. */
  #dropBuffer(): void {
    this.#buf = null;
    this.#fill = 0;
    this.#o.memory?.release(this.#bufReserved);
    this.#bufReserved = 0;
  }

  /**
   * Sends the full buffer as the next part. Backpressure: one part of the
   * handle's own may be in flight; further ones (up to maxInFlight) only with
   * memory borrowed from `spare`, otherwise this waits for a part to finish.
   */
  async #sendPart(): Promise<void> {
    const body = this.#buf!.subarray(0, this.#fill);
    // The buffer's memory goes with the part, released once it is sent.
    const held = this.#bufReserved;
    this.#bufReserved = 0;
    this.#buf = null;
    this.#fill = 0;
    const max = this.#o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    let borrowed = 0;
    while (this.#inflight.size > 0) {
      if (this.#failure) return;
      if (this.#inflight.size < max && this.#o.spare?.tryReserve(body.byteLength)) {
        borrowed = body.byteLength;
        break;
      }
      await Promise.race(this.#inflight);
    }
    if (this.#failure) {
      if (borrowed) this.#o.spare!.release(borrowed);
      this.#o.memory?.release(held);
      return;
    }
    if (!this.#uploadId) {
      const { client, bucket, key, put } = this.#o;
      const ledger = this.#o.ledger;
      this.#uploadId = client.createMultipartUpload(bucket, key, put);
      if (ledger) {
        this.#uploadId = this.#uploadId.then((id) => {
          ledger.started(id, key);
          return id;
        });
      }
    }
    const partNumber = this.#parts.length + 1;
    const part = this.#uploadPart(partNumber, body);
    this.#parts.push(part);
    const tracked: Promise<void> = part.then(
      () => {},
      (err) => this.#fail(err),
    ).finally(() => {
      this.#inflight.delete(tracked);
      if (borrowed) this.#o.spare!.release(borrowed);
      this.#o.memory?.release(held);
    });
    this.#inflight.add(tracked);
  }

  /** Resolves when no part is uploading. */
  async #drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.race(this.#inflight);
  }

  async #uploadPart(partNumber: number, body: Uint8Array): Promise<CompletedPart> {
    const { client, bucket, key } = this.#o;
    const uploadId = await this.#uploadId!;
    const etag = await client.uploadPart(bucket, key, uploadId, partNumber, body);
    return { partNumber, etag };
  }

  /**
   * Makes the object visible (idempotent: later calls share the result).
   * Throws the sticky failure if the upload failed.
   */
  complete(): Promise<{ etag: string; size: number }> {
    if (!this.#completion) {
      this.#completion = this.#queue.then(() => this.#complete());
      this.#completion.catch(() => {});
    }
    return this.#completion;
  }

  async #complete(): Promise<{ etag: string; size: number }> {
    if (this.#failure) {
      await this.#failing;
      throw this.#failure;
    }
    this.#state = "completing";
    const { client, bucket, key, put, ifNoneMatch } = this.#o;
    try {
      let etag: string;
      if (!this.#uploadId) {
        const body = this.#buf ? this.#buf.subarray(0, this.#fill) : new Uint8Array(0);
        try {
          ({ etag } = await client.putObject(bucket, key, body, { ...put, ifNoneMatch }));
        } finally {
          this.#dropBuffer();
        }
      } else {
        if (this.#fill > 0) await this.#sendPart();
        this.#dropBuffer();
        await this.#drain();
        if (this.#failure) throw this.#failure;
        const parts = await Promise.all(this.#parts);
        const uploadId = await this.#uploadId;
        ({ etag } = await client.completeMultipartUpload(bucket, key, uploadId, parts, {
          ifNoneMatch,
        }));
        this.#o.ledger?.ended(uploadId);
      }
      this.#state = "done";
      this.#parts = [];
      return { etag, size: this.#size };
    } catch (err) {
      await this.#fail(err);
      throw this.#failure!;
    }
  }

  /** Abandons the upload (no object is created); resolves once its abort is over. */
  async abort(reason: string): Promise<void> {
    if (this.#state === "done") return;
    await this.#fail(new FsError(Errno.EIO, `Upload of "${this.#o.key}" aborted: ${reason}`));
  }

  /** Records the first failure (synchronously) and returns its abort, shared by every caller. */
  #fail(err: unknown): Promise<void> {
    this.#failing ??= this.#failAndAbort(err);
    return this.#failing;
  }

  async #failAndAbort(err: unknown): Promise<void> {
    const errno = errnoOf(err, "upload");
    this.#failure = err instanceof FsError ? err : new FsError(
      errno,
      `Cannot upload "${this.#o.key}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    this.#state = "failed";
    this.#dropBuffer();
    log.with({ component: "fs" }).warn("Upload failed", {
      key: this.#o.key,
      errno,
      error: err,
    });
    if (this.#uploadId) {
      const { client, bucket, key } = this.#o;
      try {
        const uploadId = await this.#uploadId;
        // Parts still in flight would otherwise outlive the abort.
        await Promise.allSettled(this.#parts);
        await client.abortMultipartUpload(bucket, key, uploadId);
        this.#o.ledger?.ended(uploadId);
      } catch (abortErr) {
        log.with({ component: "fs" }).warn("Cannot abort multipart upload", {
          key,
          error: abortErr,
        });
      }
    }
  }
}
