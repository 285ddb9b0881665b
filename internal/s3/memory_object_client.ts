/**
 * An in-memory `ObjectClient` that behaves like S3 where the file system and
 * the controller can tell the difference.
 *
 * - Keys sort in UTF-8 byte order (which equals Unicode code point order, not
 *   JavaScript's UTF-16 order), and ListObjectsV2 honours prefix, delimiter,
 *   continuation tokens, startAfter and maxKeys (clamped to 1000).
 * - Every put gets a fresh quoted ETag, even for identical content, so a
 *   reader pinned with If-Match notices any overwrite.
 * - Preconditions are checked before ranges (412 wins over 416), like S3.
 * - Multipart uploads enforce the 5 MiB minimum for non-last parts unless
 *   `minPartSize` lowers it for tests.
 *
 * Test hooks: per-operation request counters, `failNext()` to inject
 * failures, and `beforeRequest` to park a request until a test releases it.
 * "Another client" writes through the same instance (`putObjectOutOfBand`).
 *
 * @module
 */

import type {
  BucketLocation,
  CompletedPart,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectClient,
  ObjectInfo,
  PutOptions,
  S3ErrorCode,
} from "./object_client.ts";
import { bodyBufferSize, compareKeys, S3Error } from "./object_client.ts";

/** The operations counted and hookable, named like the interface methods. */
export type MemoryOp =
  | "createBucket"
  | "headBucket"
  | "deleteBucket"
  | "putBucketTagging"
  | "getBucketTagging"
  | "headObject"
  | "getObject"
  | "putObject"
  | "deleteObject"
  | "listObjects"
  | "createMultipartUpload"
  | "uploadPart"
  | "completeMultipartUpload"
  | "abortMultipartUpload";

export interface MemoryObjectClientOptions {
  /** Minimum size of every part but the last (S3: 5 MiB). */
  minPartSize?: number;
  /** Clock for LastModified; `() => new Date()` by default. */
  now?: () => Date;
  /** Called (and awaited) before every request, after the abort check. */
  beforeRequest?: (op: MemoryOp, bucket: string, key?: string) => Promise<void> | void;
}

interface StoredObject {
  body: Uint8Array;
  etag: string;
  lastModified: Date;
  storageClass: string;
  sse?: string;
  sseKmsKeyId?: string;
  metadata?: Record<string, string>;
}

class Bucket {
  readonly objects = new Map<string, StoredObject>();
  /** Keys in S3 order; rebuilt lazily after a key is added or removed. */
  sorted: string[] | null = null;
  tags: Record<string, string> = {};
  constructor(readonly region?: string) {}

  sortedKeys(): string[] {
    if (!this.sorted) this.sorted = [...this.objects.keys()].sort(compareKeys);
    return this.sorted;
  }
}

interface Upload {
  bucket: string;
  key: string;
  parts: Map<number, { etag: string; body: Uint8Array }>;
  opts: PutOptions;
}

const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_NUMBER = 10_000;
const MAX_LIST_KEYS = 1000;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function aborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new S3Error("Aborted", "Request aborted by the caller");
}

function encodeToken(value: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(value)));
}

function decodeToken(token: string): string {
  try {
    const bin = atob(token);
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(bin, (c) => c.charCodeAt(0)),
    );
  } catch (err) {
    throw new S3Error("Other", `Cannot list objects: invalid continuation token "${token}"`, 400, {
      cause: err,
    });
  }
}

/** First index in `sorted` whose key is > `after` (or >= when `inclusive`). */
function lowerBound(sorted: string[], key: string, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(sorted[mid]!, key);
    if (c < 0 || (!inclusive && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryObjectClient implements ObjectClient {
  readonly #buckets = new Map<string, Bucket>();
  readonly #uploads = new Map<string, Upload>();
  readonly #counts = new Map<MemoryOp, number>();
  readonly #failures = new Map<MemoryOp, S3ErrorCode[]>();
  readonly #minPartSize: number;
  readonly #now: () => Date;
  #beforeRequest: MemoryObjectClientOptions["beforeRequest"];
  #etagCounter = 0;
  #uploadCounter = 0;

  constructor(opts: MemoryObjectClientOptions = {}) {
    this.#minPartSize = opts.minPartSize ?? S3_MIN_PART_SIZE;
    this.#now = opts.now ?? (() => new Date());
    this.#beforeRequest = opts.beforeRequest;
  }

  // ---- Test hooks ----------------------------------------------------------

  /** How many requests of `op` were made (failed ones included); all ops when absent. */
  requestCount(op?: MemoryOp): number {
    if (op) return this.#counts.get(op) ?? 0;
    let total = 0;
    for (const n of this.#counts.values()) total += n;
    return total;
  }

  resetCounts(): void {
    this.#counts.clear();
  }

  /** Makes the next `times` requests of `op` fail with `code`. */
  failNext(op: MemoryOp, code: S3ErrorCode, times = 1): void {
    const queue = this.#failures.get(op) ?? [];
    for (let i = 0; i < times; i++) queue.push(code);
    this.#failures.set(op, queue);
  }

  /** Replaces the hook awaited before every request. */
  setBeforeRequest(hook: MemoryObjectClientOptions["beforeRequest"]): void {
    this.#beforeRequest = hook;
  }

  /** A write by "another client": the same as `putObject`. */
  putObjectOutOfBand(bucket: string, key: string, body: Uint8Array | string): Promise<{
    etag: string;
  }> {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    return this.putObject(bucket, key, bytes);
  }

  /** Keys of `bucket` in S3 order (synchronous, uncounted). */
  keys(bucket: string): string[] {
    return [...this.#requireBucket(bucket).sortedKeys()];
  }

  /** The stored body of a key, or undefined (synchronous, uncounted). */
  peek(bucket: string, key: string): Uint8Array | undefined {
    return this.#buckets.get(bucket)?.objects.get(key)?.body;
  }

  /** Multipart uploads not yet completed or aborted. */
  pendingUploads(bucket?: string): { uploadId: string; key: string; parts: number }[] {
    const out = [];
    for (const [uploadId, u] of this.#uploads) {
      if (bucket === undefined || u.bucket === bucket) {
        out.push({ uploadId, key: u.key, parts: u.parts.size });
      }
    }
    return out;
  }

  // ---- Buckets -------------------------------------------------------------

  async createBucket(bucket: string, opts?: BucketLocation): Promise<void> {
    await this.#enter("createBucket", bucket);
    if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) {
      throw new S3Error("InvalidBucketName", `Cannot create bucket "${bucket}": invalid name`, 400);
    }
    if (this.#buckets.has(bucket)) {
      throw new S3Error(
        "BucketAlreadyOwnedByYou",
        `Cannot create bucket "${bucket}": it already exists`,
        409,
      );
    }
    this.#buckets.set(bucket, new Bucket(opts?.region));
  }

  async headBucket(bucket: string): Promise<void> {
    await this.#enter("headBucket", bucket);
    this.#requireBucket(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.#enter("deleteBucket", bucket);
    const b = this.#requireBucket(bucket);
    if (b.objects.size > 0) {
      throw new S3Error("BucketNotEmpty", `Cannot delete bucket "${bucket}": it is not empty`, 409);
    }
    this.#buckets.delete(bucket);
    for (const [id, u] of this.#uploads) if (u.bucket === bucket) this.#uploads.delete(id);
  }

  async putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void> {
    await this.#enter("putBucketTagging", bucket);
    this.#requireBucket(bucket).tags = { ...tags };
  }

  async getBucketTagging(bucket: string): Promise<Record<string, string>> {
    await this.#enter("getBucketTagging", bucket);
    return { ...this.#requireBucket(bucket).tags };
  }

  // ---- Objects -------------------------------------------------------------

  async headObject(
    bucket: string,
    key: string,
    opts?: { signal?: AbortSignal },
  ): Promise<ObjectInfo | null> {
    await this.#enter("headObject", bucket, key, opts?.signal);
    const obj = this.#requireBucket(bucket).objects.get(key);
    if (!obj) return null;
    // Like S3, only HEAD (not LIST) returns user metadata.
    return obj.metadata
      ? { ...this.#info(key, obj), metadata: { ...obj.metadata } }
      : this.#info(key, obj);
  }

  async getObject(bucket: string, key: string, opts: GetOptions = {}): Promise<GetResult> {
    await this.#enter("getObject", bucket, key, opts.signal);
    const obj = this.#requireBucket(bucket).objects.get(key);
    if (!obj) throw new S3Error("NoSuchKey", `Cannot get object "${key}": no such key`, 404);
    if (opts.ifMatch !== undefined && opts.ifMatch !== obj.etag) {
      throw new S3Error(
        "PreconditionFailed",
        `Cannot get object "${key}": ETag ${obj.etag} does not match ${opts.ifMatch}`,
        412,
      );
    }
    const size = obj.body.byteLength;
    let body = obj.body;
    if (opts.range) {
      const { start, end } = opts.range;
      if (!(start >= 0 && end > start && start < size)) {
        throw new S3Error(
          "InvalidRange",
          `Cannot get object "${key}": range "${start}-${end}" is not satisfiable for size "${size}"`,
          416,
        );
      }
      body = obj.body.subarray(start, Math.min(end, size));
    }
    // Like the real client: `into` is transferred, a fresh buffer has one spare byte.
    const room = bodyBufferSize(body.byteLength);
    const memory = opts.into && opts.into.byteLength >= room
      ? opts.into.transfer()
      : new ArrayBuffer(room);
    const copy = new Uint8Array(memory, 0, body.byteLength);
    copy.set(body);
    return {
      body: copy,
      etag: obj.etag,
      objectSize: size,
      lastModified: obj.lastModified,
    };
  }

  async putObject(
    bucket: string,
    key: string,
    body: Uint8Array,
    opts: PutOptions = {},
  ): Promise<{ etag: string }> {
    await this.#enter("putObject", bucket, key, opts.signal);
    const b = this.#requireBucket(bucket);
    this.#checkKey(key);
    if (opts.ifNoneMatch && b.objects.has(key)) {
      throw new S3Error("PreconditionFailed", `Cannot put object "${key}": it already exists`, 412);
    }
    return { etag: this.#store(b, key, body.slice(), opts, "") };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.#enter("deleteObject", bucket, key);
    const b = this.#requireBucket(bucket);
    if (b.objects.delete(key)) b.sorted = null;
  }

  async listObjects(bucket: string, opts: ListOptions = {}): Promise<ListPage> {
    await this.#enter("listObjects", bucket, undefined, opts.signal);
    const b = this.#requireBucket(bucket);
    const prefix = opts.prefix ?? "";
    const delimiter = opts.delimiter || undefined;
    const maxKeys = Math.min(opts.maxKeys ?? MAX_LIST_KEYS, MAX_LIST_KEYS);
    const page: ListPage = { objects: [], commonPrefixes: [] };
    if (maxKeys <= 0) return page;

    // A token names the last item returned; for a common prefix every key
    // under it is skipped, which is how S3 avoids repeating it.
    let after = opts.startAfter ?? "";
    let skipPrefix: string | undefined;
    if (opts.continuationToken !== undefined) {
      const token = decodeToken(opts.continuationToken);
      after = token.slice(1);
      if (token[0] === "P") skipPrefix = after;
    }
    if (compareKeys(after, prefix) < 0) after = "";

    const sorted = b.sortedKeys();
    let i = after === "" ? lowerBound(sorted, prefix, true) : lowerBound(sorted, after, false);
    let count = 0;
    let last = "";
    let lastIsPrefix = false;
    for (; i < sorted.length; i++) {
      const key = sorted[i]!;
      if (!key.startsWith(prefix)) {
        if (compareKeys(key, prefix) > 0) break;
        continue;
      }
      if (skipPrefix !== undefined && key.startsWith(skipPrefix)) continue;
      let item: string = key;
      let isPrefix = false;
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          item = key.slice(0, at + delimiter.length);
          isPrefix = true;
        }
      }
      if (isPrefix && item === last) continue;
      if (count === maxKeys) {
        page.nextContinuationToken = encodeToken((lastIsPrefix ? "P" : "O") + last);
        return page;
      }
      if (isPrefix) {
        page.commonPrefixes.push(item);
        skipPrefix = item;
      } else {
        page.objects.push(this.#info(key, b.objects.get(key)!));
      }
      last = item;
      lastIsPrefix = isPrefix;
      count++;
    }
    return page;
  }

  // ---- Multipart uploads ---------------------------------------------------

  async createMultipartUpload(bucket: string, key: string, opts: PutOptions = {}): Promise<string> {
    await this.#enter("createMultipartUpload", bucket, key, opts.signal);
    this.#requireBucket(bucket);
    this.#checkKey(key);
    const uploadId = `upload-${++this.#uploadCounter}`;
    const { signal: _signal, ...rest } = opts;
    this.#uploads.set(uploadId, { bucket, key, parts: new Map(), opts: rest });
    return uploadId;
  }

  async uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    opts?: { signal?: AbortSignal },
  ): Promise<string> {
    await this.#enter("uploadPart", bucket, key, opts?.signal);
    const upload = this.#requireUpload(bucket, key, uploadId);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
      throw new S3Error("Other", `Cannot upload part "${partNumber}": invalid part number`, 400);
    }
    const etag = this.#nextEtag("");
    upload.parts.set(partNumber, { etag, body: body.slice() });
    return etag;
  }

  async completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    opts?: { ifNoneMatch?: boolean },
  ): Promise<{ etag: string }> {
    await this.#enter("completeMultipartUpload", bucket, key);
    const upload = this.#requireUpload(bucket, key, uploadId);
    const b = this.#requireBucket(bucket);
    if (parts.length === 0) {
      throw new S3Error("Other", `Cannot complete upload "${uploadId}": no parts given`, 400);
    }
    const chunks: Uint8Array[] = [];
    let prev = 0;
    for (const [i, p] of parts.entries()) {
      const stored = upload.parts.get(p.partNumber);
      if (p.partNumber <= prev || !stored || stored.etag !== p.etag) {
        throw new S3Error(
          "InvalidPart",
          `Cannot complete upload "${uploadId}": part "${p.partNumber}" is missing, out of order or has a different ETag`,
          400,
        );
      }
      if (i < parts.length - 1 && stored.body.byteLength < this.#minPartSize) {
        throw new S3Error(
          "EntityTooSmall",
          `Cannot complete upload "${uploadId}": part "${p.partNumber}" has "${stored.body.byteLength}" bytes, below the minimum "${this.#minPartSize}"`,
          400,
        );
      }
      prev = p.partNumber;
      chunks.push(stored.body);
    }
    if (opts?.ifNoneMatch && b.objects.has(key)) {
      throw new S3Error(
        "PreconditionFailed",
        `Cannot complete upload "${uploadId}": object "${key}" already exists`,
        412,
      );
    }
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    const body = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.byteLength;
    }
    this.#uploads.delete(uploadId);
    return { etag: this.#store(b, key, body, upload.opts, `-${parts.length}`) };
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.#enter("abortMultipartUpload", bucket, key);
    this.#requireUpload(bucket, key, uploadId);
    this.#uploads.delete(uploadId);
  }

  // ---- Internals -----------------------------------------------------------

  async #enter(op: MemoryOp, bucket: string, key?: string, signal?: AbortSignal): Promise<void> {
    this.#counts.set(op, (this.#counts.get(op) ?? 0) + 1);
    aborted(signal);
    if (this.#beforeRequest) await this.#beforeRequest(op, bucket, key);
    aborted(signal);
    const queue = this.#failures.get(op);
    const code = queue?.shift();
    if (code !== undefined) {
      throw new S3Error(code, `Injected failure of "${op}" on "${key ?? bucket}"`);
    }
  }

  #requireBucket(bucket: string): Bucket {
    const b = this.#buckets.get(bucket);
    if (!b) throw new S3Error("NoSuchBucket", `Bucket "${bucket}" does not exist`, 404);
    return b;
  }

  #requireUpload(bucket: string, key: string, uploadId: string): Upload {
    const u = this.#uploads.get(uploadId);
    if (!u || u.bucket !== bucket || u.key !== key) {
      throw new S3Error("NoSuchUpload", `Upload "${uploadId}" of "${key}" does not exist`, 404);
    }
    return u;
  }

  #checkKey(key: string): void {
    if (key.length === 0 || new TextEncoder().encode(key).byteLength > 1024) {
      throw new S3Error("Other", `Cannot write object "${key}": invalid key length`, 400);
    }
  }

  #nextEtag(suffix: string): string {
    const n = ++this.#etagCounter;
    // 32 hex digits like an MD5, unique per write.
    const hex = (n.toString(16).padStart(8, "0") + Date.now().toString(16)).padEnd(32, "0");
    return `"${hex.slice(0, 32)}${suffix}"`;
  }

  #store(b: Bucket, key: string, body: Uint8Array, opts: PutOptions, suffix: string): string {
    const etag = this.#nextEtag(suffix);
    if (!b.objects.has(key)) b.sorted = null;
    b.objects.set(key, {
      body,
      etag,
      lastModified: this.#now(),
      storageClass: opts.storageClass ?? "STANDARD",
      sse: opts.sse,
      sseKmsKeyId: opts.sseKmsKeyId,
      metadata: opts.metadata && Object.keys(opts.metadata).length > 0
        ? { ...opts.metadata }
        : undefined,
    });
    return etag;
  }

  #info(key: string, obj: StoredObject): ObjectInfo {
    return {
      key,
      size: obj.body.byteLength,
      etag: obj.etag,
      lastModified: obj.lastModified,
      storageClass: obj.storageClass,
    };
  }
}
