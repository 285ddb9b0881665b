/**
 * The object-client interface: everything s3csi asks of S3, and nothing more.
 *
 * Two implementations stand behind it: `AwsObjectClient` (on
 * `@aws-sdk/client-s3`, used in production and against MinIO in tests) and
 * `MemoryObjectClient` (in memory, with ETags, for fast unit and model tests,
 * and able to simulate changes made by other clients). The file system core
 * and the controller depend only on this file; an `AwsObjectClient` is built
 * where a role is wired up (`ClientCache`, the mount runner, benchmarks).
 *
 * Every failure is an `S3Error` with a `code` from a closed set, so callers
 * branch on codes and never on SDK exception classes or message strings.
 * Each code's domain-error kind (and so its gRPC status and errno) is set in
 * one table, `S3_ERROR_KINDS`, which is also the list of codes.
 *
 * @module
 */
import { type ErrorKind, S3csiError } from "../errors/mod.ts";

/** The closed set of S3 failure codes callers branch on, each with its kind. */
const S3_ERROR_KINDS = {
  NoSuchKey: "not_found",
  NoSuchBucket: "not_found",
  NoSuchUpload: "not_found",
  // If-Match / If-None-Match did not hold.
  PreconditionFailed: "failed_precondition",
  // A range the object does not have.
  InvalidRange: "internal",
  BucketNotEmpty: "failed_precondition",
  BucketAlreadyOwnedByYou: "already_exists",
  // Owned by someone else.
  BucketAlreadyExists: "already_exists",
  InvalidBucketName: "invalid_argument",
  // Includes bad signatures and unknown access keys.
  AccessDenied: "permission_denied",
  // A multipart upload S3 refused to assemble.
  EntityTooSmall: "internal",
  InvalidPart: "internal",
  // The transient ones (`S3Error.transient`): 503 SlowDown and 429; other 5xx;
  // connection refused, reset, DNS, TLS, timeout.
  Throttled: "unavailable",
  ServerError: "unavailable",
  NetworkError: "unavailable",
  // The caller's AbortSignal fired.
  Aborted: "aborted",
  // Any other refusal or failure: the message carries the HTTP status and S3 code.
  Other: "internal",
} as const satisfies Record<string, ErrorKind>;

export type S3ErrorCode = keyof typeof S3_ERROR_KINDS;

export class S3Error extends S3csiError {
  readonly kind: ErrorKind;

  constructor(
    readonly code: S3ErrorCode,
    message: string,
    readonly httpStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.kind = S3_ERROR_KINDS[code];
  }

  /** True for failures worth retrying later (the request may succeed unchanged). */
  get transient(): boolean {
    return this.kind === "unavailable";
  }
}

export function isS3Error(err: unknown, code?: S3ErrorCode): err is S3Error {
  return err instanceof S3Error && (code === undefined || err.code === code);
}

/**
 * Compares keys in UTF-8 byte order (= code point order): the order S3
 * lists keys in, and so the order every listing consumer relies on.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, which sort
    // after every BMP character in UTF-8 although 0xE000-0xFFFF code units
    // are numerically larger.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** The ETag as S3 returns it, quotes included. */
  etag: string;
  lastModified: Date;
  storageClass?: string;
  /** User metadata (`x-amz-meta-*`, keys in lower case); only HEAD returns it, and only when set. */
  metadata?: Record<string, string>;
}

export interface ListPage {
  /** Objects directly matching the request, in S3 (UTF-8 byte) order. */
  objects: ObjectInfo[];
  /** Common prefixes (each ends with the delimiter), in S3 order. */
  commonPrefixes: string[];
  /** Present when more results exist. */
  nextContinuationToken?: string;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  continuationToken?: string;
  startAfter?: string;
  /** At most 1000 (S3's limit). */
  maxKeys?: number;
  signal?: AbortSignal;
}

export interface GetOptions {
  /** Byte range [start, end) to fetch; the whole object when absent. */
  range?: { start: number; end: number };
  /** Only succeed if the object's ETag still equals this (PreconditionFailed otherwise). */
  ifMatch?: string;
  signal?: AbortSignal;
  /**
   * Memory to read the body into instead of a fresh buffer, used when it has
   * room for the body plus one byte (`bodyBufferSize`; the spare byte catches
   * a body longer than announced). It is transferred: the caller must not
   * touch it again, and `body` then views the same memory from offset 0.
   */
  into?: ArrayBuffer;
}

/**
 * The bytes of memory a body of `length` bytes is read into: one more, so a
 * body longer than announced shows. Clients allocate their buffers this size,
 * and `GetOptions.into` is used when it has at least this much.
 */
export function bodyBufferSize(length: number): number {
  return length + 1;
}

export interface GetResult {
  body: Uint8Array;
  etag: string;
  /** Size of the whole object, not of the range. */
  objectSize: number;
  lastModified: Date;
}

/** Options applied to every object s3csi writes. */
export interface PutOptions {
  /** Fail with PreconditionFailed if the key already exists (If-None-Match: *). */
  ifNoneMatch?: boolean;
  storageClass?: string;
  /** "AES256" | "aws:kms" | "aws:kms:dsse" */
  sse?: string;
  sseKmsKeyId?: string;
  /** User metadata to store with the object: lower-case keys, printable ASCII values. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

export interface BucketLocation {
  region?: string;
}

export interface ObjectClient {
  // Buckets
  createBucket(bucket: string, opts?: BucketLocation): Promise<void>;
  /** Throws NoSuchBucket / AccessDenied / network errors. */
  headBucket(bucket: string): Promise<void>;
  /** Throws BucketNotEmpty when the bucket holds objects. */
  deleteBucket(bucket: string): Promise<void>;
  /**
   * Replaces the bucket's tags. The controller records each volume's name and
   * capacity there, so a retried CreateVolume can be checked for
   * compatibility without local state. Optional: stores without tagging
   * support simply skip that check.
   */
  putBucketTagging?(bucket: string, tags: Record<string, string>): Promise<void>;
  /** The bucket's tags; an empty object when it has none. */
  getBucketTagging?(bucket: string): Promise<Record<string, string>>;

  // Objects
  /** Returns null when the key does not exist. */
  headObject(bucket: string, key: string, opts?: { signal?: AbortSignal }): Promise<
    ObjectInfo | null
  >;
  getObject(bucket: string, key: string, opts?: GetOptions): Promise<GetResult>;
  putObject(bucket: string, key: string, body: Uint8Array, opts?: PutOptions): Promise<
    { etag: string }
  >;
  /** Succeeds when the key does not exist (S3 semantics). */
  deleteObject(bucket: string, key: string): Promise<void>;
  listObjects(bucket: string, opts?: ListOptions): Promise<ListPage>;

  // Multipart uploads
  createMultipartUpload(bucket: string, key: string, opts?: PutOptions): Promise<string>;
  uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    opts?: { signal?: AbortSignal },
  ): Promise<string>;
  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    opts?: { ifNoneMatch?: boolean },
  ): Promise<{ etag: string }>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
}

/** Static credentials; `sessionToken` is optional. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** How to reach S3: one value per endpoint + credential set. */
export interface S3ClientConfig {
  /** e.g. "http://127.0.0.1:9000"; AWS default endpoints when absent. */
  endpointUrl?: string;
  region: string;
  /** Path-style addressing (the default for s3csi: S3-compatible stores need it). */
  forcePathStyle: boolean;
  /** Static credentials; when absent the standard AWS environment/profile chain is used. */
  credentials?: Credentials;
  /** Called before each request to fetch fresh credentials (rotation); wins over `credentials`. */
  credentialsProvider?: () => Promise<Credentials>;
  /** PEM bundle of extra trusted CAs. */
  caBundlePath?: string;
  /** Total attempts per request including the first (AWS_MAX_ATTEMPTS semantics). */
  maxAttempts?: number;
  /**
   * An attempt whose answer is silent this long (no body byte; no head for
   * twice as long) fails as a network error and is retried. 60 s by default.
   */
  idleTimeoutMs?: number;
  userAgentPrefix?: string;
  /** Maximum concurrent HTTP connections. */
  maxConnections?: number;
}
