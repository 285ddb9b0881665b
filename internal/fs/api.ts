/**
 * The file-system operation interface between the FUSE session
 * (`internal/fuse/`, which knows bytes and opcodes but not S3) and the file
 * system core (`internal/fs/`, which knows S3 but not bytes).
 *
 * It is inode-based like the kernel protocol: the session decodes a request,
 * calls one method, and encodes the result. Methods either resolve with a
 * plain value or throw an `FsError` carrying the errno to reply with; any
 * other thrown value is answered with EIO and logged by the session.
 *
 * Lookup counting: every resolved `lookup`, `mknod`, `mkdir` and every entry
 * accepted by a `readdir` with `plus = true` adds one reference to the
 * returned inode; `forget` removes `nlookup` references. An inode may be
 * dropped only when its count reaches zero. The root inode (1) is never
 * forgotten.
 *
 * @module
 */

export type Ino = number;
export type FileHandle = number;

export const ROOT_INO: Ino = 1;

/** File type bits of `Attr.mode` (the S_IFMT part). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export interface Attr {
  ino: Ino;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Type bits and permission bits, e.g. S_IFREG | 0o644. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  blksize: number;
}

/** The answer to lookup, mknod, mkdir and readdirplus entries. */
export interface Entry {
  ino: Ino;
  generation: number;
  attr: Attr;
  /** How long the kernel may cache the name → inode mapping. */
  entryTtlMs: number;
  /** How long the kernel may cache `attr`. */
  attrTtlMs: number;
}

export interface AttrReply {
  attr: Attr;
  ttlMs: number;
}

export interface OpenReply {
  fh: FileHandle;
  /** Bypass the page cache for this handle (FOPEN_DIRECT_IO). */
  directIo?: boolean;
  /** Keep previously cached pages (FOPEN_KEEP_CACHE). */
  keepCache?: boolean;
  /** The kernel may cache the directory listing (FOPEN_CACHE_DIR); directories only. */
  cacheDir?: boolean;
}

export interface DirEntry {
  name: string;
  ino: Ino;
  /** S_IFDIR or S_IFREG (type bits only). */
  type: number;
  /** Cookie of the *next* entry: passing it back as `offset` resumes after this one. */
  nextOffset: number;
  /** Present for readdirplus: the full entry (adds a lookup reference when accepted). */
  entry?: Entry;
}

/** Which attributes a setattr call changes (absent = unchanged). */
export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number | "now";
  mtimeMs?: number | "now";
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Who is asking, and a signal that fires if the kernel interrupts the request. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  signal: AbortSignal;
}

/**
 * Open flags as the kernel passes them: the ones the file system looks at,
 * plus O_RDWR and O_SYNC, which callers (and the tests) pass.
 */
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_TRUNC = 0o1000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_SYNC = 0o4010000;

/** An error that carries the errno to answer with. `message` is logged, never sent. */
export class FsError extends Error {
  constructor(readonly errno: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FsError";
  }
}

/** Refuses the current operation with `errno`. */
export function fail(errno: number, message: string): never {
  throw new FsError(errno, message);
}

/** Linux errno values (one table for the whole program). */
export { Errno } from "../errno.ts";

/**
 * The operations a FUSE session dispatches to. Its dispatcher answers ENOSYS
 * for an optional method a file system leaves out, and for operations not
 * listed here (readlink, xattrs, locks, fallocate, ...); SEMANTICS.md lists
 * what the S3 file system answers for each.
 */
export interface FileSystem {
  /** Called once after the kernel handshake. */
  init?(): Promise<void>;
  /** Called when the session ends (unmount or signal): complete or abort pending work. */
  destroy?(): Promise<void>;

  lookup(ctx: RequestContext, parent: Ino, name: string): Promise<Entry>;
  forget(ino: Ino, nlookup: number): void;
  getattr(ctx: RequestContext, ino: Ino, fh?: FileHandle): Promise<AttrReply>;
  setattr(
    ctx: RequestContext,
    ino: Ino,
    changes: SetattrChanges,
    fh?: FileHandle,
  ): Promise<AttrReply>;

  /** Creates a regular file (mode carries S_IFREG). Nothing is uploaded until a write/close. */
  mknod(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    mode: number,
    umask: number,
  ): Promise<Entry>;
  mkdir(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    mode: number,
    umask: number,
  ): Promise<Entry>;
  unlink(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  rmdir(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  rename(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void>;

  open(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply>;
  /**
   * Returns exactly `size` bytes unless EOF is reached first. The bytes may
   * view a buffer the file system reuses: they are valid until the caller
   * next yields, so write them out at once (as the session does) or copy them.
   */
  read(
    ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    size: number,
  ): Promise<Uint8Array>;
  /**
   * Returns the number of bytes accepted. `data` is a view into a buffer the
   * session reuses: copy it if it must outlive the call.
   */
  write(
    ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    data: Uint8Array,
  ): Promise<number>;
  /** Sent on every close() of a descriptor; `pid` is in ctx. */
  flush(ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void>;
  /** The last descriptor is gone. Errors are not seen by the application. */
  release(ctx: RequestContext, ino: Ino, fh: FileHandle, flags: number): Promise<void>;
  fsync(ctx: RequestContext, ino: Ino, fh: FileHandle, datasync: boolean): Promise<void>;

  opendir(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply>;
  /**
   * Streams entries starting at cookie `offset` (0 = start, "." and ".." included)
   * into `add`, which returns false when the reply buffer is full: the entry
   * it refused is served again on the next call. With `plus`, entries carry
   * `entry` and count a lookup reference only when `add` accepts them.
   */
  readdir(
    ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    plus: boolean,
    add: (e: DirEntry) => boolean,
  ): Promise<void>;
  releasedir(ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void>;
  statfs(ctx: RequestContext, ino: Ino): Promise<StatFs>;

  /**
   * Optional operations: a file system that leaves one out has the FUSE
   * dispatcher answer ENOSYS for it. A file system that refuses one on principle
   * implements it and throws its `FsError` (the S3 file system answers EPERM
   * for links: objects have no link count).
   */
  symlink?(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<Entry>;
  link?(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<Entry>;

  /**
   * Takeover (internal/takeover): what a read handle is pinned to (the
   * object's ETag), recorded with its open so that a successor serves the
   * same version or none.
   */
  pinnedVersion?(fh: FileHandle): string | undefined;
  /**
   * Takeover: continue the session a dead server left, before its first
   * request is served: the nodes and handles the kernel still holds, and
   * the multipart uploads to abort.
   */
  adopt?(a: Adoption): void;
}

/** A node the kernel holds, as a predecessor's journal gives it. */
export interface AdoptedNode {
  ino: Ino;
  parent: Ino;
  name: string;
  kind: "file" | "dir";
  /** Kernel references not yet forgotten. */
  lookups: number;
}

/** A handle the kernel holds; `version` is set for a reader (`pinnedVersion`). */
export interface AdoptedHandle {
  fh: FileHandle;
  ino: Ino;
  flags: number;
  version?: string;
}

/** What `FileSystem.adopt` continues from. */
export interface Adoption {
  /** Parents before children. */
  nodes: AdoptedNode[];
  handles: AdoptedHandle[];
  /** Multipart uploads the predecessor left open. */
  uploads: { uploadId: string; key: string }[];
  /** Numbers above every node ID and handle the kernel may hold. */
  nextIno: Ino;
  nextFh: FileHandle;
}
