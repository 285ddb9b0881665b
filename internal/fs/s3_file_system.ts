/**
 * `S3FileSystem`: the `FileSystem` the FUSE session calls, over one bucket
 * (and optional prefix) through an `ObjectClient`, with Mountpoint for S3's
 * semantics. SEMANTICS.md is the contract; this note covers the structure.
 *
 * - Inodes: each directory inode maps child names to inodes. An inode lives
 *   in the table while the kernel holds lookup references, while it is open,
 *   or while it carries local state (a `mkdir` not yet persisted, a file
 *   being written, or a directory above one of those); otherwise it is
 *   dropped at once, so memory follows what the kernel holds. Inode numbers
 *   only grow, so none is ever reused. A name whose kind changes gets a new
 *   inode; the old one is detached and lingers until forgotten.
 * - Local state is tracked per directory (`localChildren`, keyed by kind and
 *   name), so a file being written that a remote directory shadows is still
 *   found when the directory goes away, and "does this
 *   directory exist only locally" is O(1) and propagates upwards.
 * - Namespace changes in one directory (create, mkdir, unlink, rmdir) are
 *   serialized with a keyed mutex; lookups run concurrently and apply their
 *   result synchronously after the S3 round trip, against current state.
 *
 * @module
 */

import {
  type Attr,
  type AttrReply,
  type DirEntry,
  type Entry,
  Errno,
  type FileHandle,
  type FileSystem,
  FsError,
  type Ino,
  O_ACCMODE,
  O_DIRECT,
  O_DSYNC,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  type OpenReply,
  type RequestContext,
  ROOT_INO,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type SetattrChanges,
  type StatFs,
} from "./api.ts";
import {
  type FsConfig,
  maxWriters,
  MIB,
  NEGATIVE_CACHE_MAX,
  readBudgetBytes,
  type Ttls,
  ttlsOf,
  validateFsConfig,
} from "./config.ts";
import {
  BufferPool,
  createDataCache,
  createReader,
  type DataCache,
  MemoryBudget,
  type ReadSource,
} from "./prefetch/mod.ts";
import { DirStream, type ListedEntry } from "./dir_stream.ts";
import { type FsOp, toFsError } from "./errno.ts";
import { KeyedMutex } from "./mutex.ts";
import { isValidName, NAME_MAX, utf8Length } from "./names.ts";
import { Upload } from "./upload.ts";
import type { ObjectClient, ObjectInfo } from "../s3/object_client.ts";
import { log } from "../log/mod.ts";

type Kind = "file" | "dir";

interface Inode {
  readonly ino: Ino;
  readonly kind: Kind;
  /** The root is its own parent. */
  readonly parent: Inode;
  readonly name: string;
  /** Files: the object key. Directories: the key prefix, ending with "/" (root: the mount prefix). */
  readonly key: string;
  lookups: number;
  opens: number;
  size: number;
  etag: string | undefined;
  mtimeMs: number;
  /** Stat confirmed by S3 until this time (ms since epoch). */
  validUntil: number;
  /** "file": created by mknod, not yet uploaded; "dir": created by mkdir, not yet persisted. */
  local: "none" | "file" | "dir";
  /** The active writer, for new files and overwrites alike. */
  upload: Upload | null;
  /** Whether the parent's name maps to this inode. */
  attached: boolean;
  children: Map<string, Inode> | null;
  /** Children with local state, keyed by `localKey()` (directories only). */
  localChildren: Map<string, Inode> | null;
}

type Handle =
  | { kind: "read"; inode: Inode; reader: ReadSource }
  | { kind: "write"; inode: Inode; upload: Upload; pid: number; flushed: boolean }
  | { kind: "dir"; inode: Inode; dir: DirHandleState };

interface DirHandleState {
  stream: DirStream | null;
  /** The most recent entries produced, for resuming at an earlier cookie. */
  window: ListedEntry[];
  /** Index (among produced entries) of `window[0]`. */
  base: number;
  produced: number;
}

type Remote = null | { kind: "dir" } | { kind: "file"; info: ObjectInfo };

/** Entries kept per directory handle for re-serving earlier cookies without relisting. */
const DIR_WINDOW = 1024;
/** Cookies 0 and 1 are "." and "..". */
const FIRST_ENTRY_COOKIE = 2;
/** statfs numbers, as large as Mountpoint's (u64::MAX / 1024 rounded to 2^54), exact in a double. */
const STATFS_HUGE = 2 ** 54;
/** Disk cache size when `cacheDir` is set without `maxCacheSize`. */
const DEFAULT_CACHE_BYTES = 1024 * MIB;

/** Local directories and files of one name may coexist (a dir always wins). */
function localKey(kind: Kind, name: string): string {
  return (kind === "dir" ? "d:" : "f:") + name;
}

function localOf(parent: Inode, name: string): Inode | undefined {
  const l = parent.localChildren!;
  return l.get(localKey("dir", name)) ?? l.get(localKey("file", name));
}

function isLocal(i: Inode): boolean {
  return i.local !== "none" || i.upload !== null || (i.localChildren?.size ?? 0) > 0;
}

function fail(errno: number, message: string): never {
  throw new FsError(errno, message);
}

export class S3FileSystem implements FileSystem {
  readonly #client: ObjectClient;
  readonly #c: FsConfig;
  readonly #ttl: Ttls;
  readonly #root: Inode;
  readonly #inodes = new Map<Ino, Inode>();
  readonly #handles = new Map<FileHandle, Handle>();
  readonly #negative = new Map<string, number>();
  readonly #dirLocks = new KeyedMutex<Ino>();
  readonly #mountTimeMs = Date.now();
  readonly #maxWriters: number;
  readonly #log = log.with({ component: "fs" });
  readonly #budget: MemoryBudget;
  /** Part buffers reused across reads (memory outside the budget: at most 8 buffers, 72 MiB). */
  readonly #pool = new BufferPool();
  #cache: DataCache | undefined;
  #nextIno = ROOT_INO + 1;
  #nextFh = 1;
  #writers = 0;

  /**
   * `deps.cache` injects a ready disk cache; otherwise `init()` creates one
   * when `config.cacheDir` is set.
   */
  constructor(client: ObjectClient, config: FsConfig, deps: { cache?: DataCache } = {}) {
    validateFsConfig(config);
    this.#client = client;
    this.#c = config;
    this.#ttl = ttlsOf(config.metadataTtl);
    this.#maxWriters = maxWriters(config);
    this.#budget = new MemoryBudget(readBudgetBytes(config));
    this.#cache = deps.cache;
    const root = {
      ino: ROOT_INO,
      kind: "dir",
      name: "",
      key: config.prefix,
      lookups: 1,
      opens: 0,
      size: 0,
      etag: undefined,
      mtimeMs: this.#mountTimeMs,
      validUntil: Number.POSITIVE_INFINITY,
      local: "none",
      upload: null,
      attached: true,
      children: new Map(),
      localChildren: new Map(),
    } as Omit<Inode, "parent"> as Inode;
    (root as { parent: Inode }).parent = root;
    this.#root = root;
    this.#inodes.set(ROOT_INO, root);
  }

  /** Inodes held in memory (for tests of memory bounds). */
  get inodeCount(): number {
    return this.#inodes.size;
  }

  /** Open file and directory handles (for tests). */
  get handleCount(): number {
    return this.#handles.size;
  }

  /** The read memory budget shared by all open files (for tests and metrics). */
  get readBudget(): MemoryBudget {
    return this.#budget;
  }

  // ---- Lifecycle -----------------------------------------------------------

  /** Creates the disk data cache when `cacheDir` is configured. */
  async init(): Promise<void> {
    if (this.#c.cacheDir && !this.#cache) {
      this.#cache = await createDataCache({
        dir: this.#c.cacheDir,
        maxBytes: this.#c.maxCacheSize ?? DEFAULT_CACHE_BYTES,
      });
    }
  }

  /**
   * Completes uploads whose handle the application already closed (their
   * flush was deferred to a release that will now never come) and aborts
   * uploads still open, so no partial object is created.
   */
  async destroy(): Promise<void> {
    const work: Promise<unknown>[] = [];
    for (const [fh, h] of this.#handles) {
      if (h.kind === "write" && h.upload.state === "open") {
        if (h.flushed) work.push(this.#finishUpload(h.inode, h.upload).catch(() => {}));
        else work.push(h.upload.abort("file system unmounted with the file still open"));
      } else if (h.kind === "read") {
        h.reader.close();
      }
      this.#handles.delete(fh);
    }
    await Promise.all(work);
    await this.#cache?.close();
  }

  // ---- Lookup and attributes -----------------------------------------------

  lookup(ctx: RequestContext, parentIno: Ino, name: string): Promise<Entry> {
    return this.#guard("lookup", { parent: parentIno, name }, async () => {
      const parent = this.#dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      const child = await this.#lookupChild(parent, name, ctx.signal, false);
      if (!child) fail(Errno.ENOENT, `Cannot find "${name}" in "${parent.key}"`);
      child.lookups++;
      return this.#entry(child);
    });
  }

  forget(ino: Ino, nlookup: number): void {
    const inode = this.#inodes.get(ino);
    if (!inode || inode === this.#root) return;
    inode.lookups = Math.max(0, inode.lookups - nlookup);
    if (inode.lookups === 0 && inode.opens === 0 && inode.local === "file" && !inode.upload) {
      // Created but never opened, and the kernel has let go of the name: nothing exists in S3,
      // so nothing remains (a CREATE whose open was refused, e.g. O_SYNC, leaves no empty file).
      inode.local = "none";
      this.#detach(inode);
    }
    this.#maybeDrop(inode);
  }

  getattr(ctx: RequestContext, ino: Ino, fh?: FileHandle): Promise<AttrReply> {
    return this.#guard("lookup", { ino }, async () => {
      const inode = this.#get(ino);
      if (!inode.attached && inode !== this.#root) {
        // Unlinked or replaced: only open handles keep its attributes meaningful.
        if (inode.opens > 0) return { attr: this.#attr(inode), ttlMs: this.#ttl.kernelMs };
        fail(Errno.ENOENT, `Cannot stat "${inode.key}": it no longer exists`);
      }
      const fresh = inode === this.#root || isLocal(inode) ||
        (fh !== undefined && this.#handles.get(fh)?.inode === inode) ||
        inode.validUntil > Date.now();
      if (!fresh) {
        const now = await this.#lookupChild(inode.parent, inode.name, ctx.signal, true);
        if (now !== inode) {
          if (now) this.#maybeDrop(now);
          fail(Errno.ENOENT, `Cannot stat "${inode.key}": it no longer exists`);
        }
      }
      return { attr: this.#attr(inode), ttlMs: this.#ttl.kernelMs };
    });
  }

  setattr(
    _ctx: RequestContext,
    ino: Ino,
    changes: SetattrChanges,
    _fh?: FileHandle,
  ): Promise<AttrReply> {
    return this.#guard("other", { ino }, () => {
      this.#writable();
      const inode = this.#get(ino);
      const attr = this.#attr(inode);
      const perm = attr.mode & ~S_IFMT;
      if (changes.mode !== undefined && (changes.mode & ~S_IFMT) !== perm) {
        fail(Errno.EPERM, `Cannot change the mode of "${inode.key}": permissions are fixed`);
      }
      if (
        (changes.uid !== undefined && changes.uid !== attr.uid) ||
        (changes.gid !== undefined && changes.gid !== attr.gid)
      ) {
        fail(Errno.EPERM, `Cannot change the owner of "${inode.key}": ownership is fixed`);
      }
      if (changes.size !== undefined && changes.size !== attr.size) {
        const hint = inode.upload || this.#c.allowOverwrite ? "" : " (mount with allowOverwrite)";
        fail(
          Errno.EPERM,
          `Cannot truncate "${inode.key}" to "${changes.size}": only open with O_TRUNC replaces a file${hint}`,
        );
      }
      if (changes.atimeMs !== undefined || changes.mtimeMs !== undefined) {
        if (!inode.upload) {
          fail(
            Errno.EPERM,
            `Cannot set the times of "${inode.key}": only files being written accept new times`,
          );
        }
        const t = changes.mtimeMs ?? changes.atimeMs;
        inode.mtimeMs = t === "now" || t === undefined ? Date.now() : t;
      }
      return Promise.resolve({ attr: this.#attr(inode), ttlMs: this.#ttl.kernelMs });
    });
  }

  // ---- Namespace changes ---------------------------------------------------

  mknod(
    ctx: RequestContext,
    parentIno: Ino,
    name: string,
    mode: number,
    _umask: number,
  ): Promise<Entry> {
    return this.#guard("lookup", { parent: parentIno, name }, () => {
      this.#writable();
      if ((mode & S_IFMT) !== S_IFREG) {
        fail(Errno.EINVAL, `Cannot create "${name}": only regular files are supported`);
      }
      return this.#create(ctx, parentIno, name, "file");
    });
  }

  mkdir(
    ctx: RequestContext,
    parentIno: Ino,
    name: string,
    _mode: number,
    _umask: number,
  ): Promise<Entry> {
    return this.#guard("lookup", { parent: parentIno, name }, () => {
      this.#writable();
      return this.#create(ctx, parentIno, name, "dir");
    });
  }

  #create(ctx: RequestContext, parentIno: Ino, name: string, kind: Kind): Promise<Entry> {
    const parent = this.#dir(parentIno);
    this.#checkName(name, Errno.EINVAL);
    return this.#dirLocks.run(parent.ino, async () => {
      if (!parent.attached) fail(Errno.ENOENT, `Cannot create "${name}": parent was removed`);
      const existing = await this.#lookupChild(parent, name, ctx.signal, true);
      if (existing) {
        this.#maybeDrop(existing);
        fail(Errno.EEXIST, `Cannot create "${name}" in "${parent.key}": it exists`);
      }
      const inode = this.#newChild(parent, name, kind, undefined);
      inode.local = kind;
      inode.mtimeMs = Date.now();
      inode.lookups++;
      this.#propagateLocal(inode);
      this.#negative.delete(this.#negKey(parent, name));
      return this.#entry(inode);
    });
  }

  unlink(ctx: RequestContext, parentIno: Ino, name: string): Promise<void> {
    return this.#guard("delete", { parent: parentIno, name }, () => {
      this.#writable();
      if (!this.#c.allowDelete) {
        fail(Errno.EPERM, `Cannot delete "${name}": deletes are disabled (mount with allowDelete)`);
      }
      const parent = this.#dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      return this.#dirLocks.run(parent.ino, async () => {
        const child = await this.#lookupChild(parent, name, ctx.signal, true);
        if (!child) fail(Errno.ENOENT, `Cannot delete "${name}" in "${parent.key}": not found`);
        if (child.kind === "dir") {
          this.#maybeDrop(child);
          fail(Errno.EISDIR, `Cannot unlink directory "${child.key}"`);
        }
        if (child.upload) fail(Errno.EPERM, `Cannot delete "${child.key}": it is being written`);
        if (child.local === "file") {
          // Created but never opened for writing: nothing exists in S3.
          child.local = "none";
        } else {
          await this.#client.deleteObject(this.#c.bucket, child.key);
        }
        this.#detach(child);
      });
    });
  }

  rmdir(ctx: RequestContext, parentIno: Ino, name: string): Promise<void> {
    return this.#guard("delete", { parent: parentIno, name }, () => {
      this.#writable();
      const parent = this.#dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      return this.#dirLocks.run(parent.ino, async () => {
        const child = await this.#lookupChild(parent, name, ctx.signal, true);
        if (!child) fail(Errno.ENOENT, `Cannot remove "${name}" in "${parent.key}": not found`);
        if (child.kind !== "dir") {
          this.#maybeDrop(child);
          fail(Errno.ENOTDIR, `Cannot remove "${child.key}": not a directory`);
        }
        if ((child.localChildren?.size ?? 0) > 0) {
          fail(Errno.ENOTEMPTY, `Cannot remove "${child.key}": not empty`);
        }
        const page = await this.#client.listObjects(this.#c.bucket, {
          prefix: child.key,
          delimiter: "/",
          maxKeys: 2,
          signal: ctx.signal,
        });
        const marker = page.objects.some((o) => o.key === child.key);
        if (page.commonPrefixes.length > 0 || page.objects.some((o) => o.key !== child.key)) {
          this.#maybeDrop(child);
          fail(Errno.ENOTEMPTY, `Cannot remove "${child.key}": not empty`);
        }
        if (marker) {
          if (!this.#c.allowDelete) {
            this.#maybeDrop(child);
            fail(
              Errno.EPERM,
              `Cannot remove "${child.key}": its marker object needs allowDelete to be deleted`,
            );
          }
          await this.#client.deleteObject(this.#c.bucket, child.key);
        }
        child.local = "none";
        this.#detach(child);
      });
    });
  }

  rename(
    _ctx: RequestContext,
    _parent: Ino,
    name: string,
    _newParent: Ino,
    newName: string,
    _flags: number,
  ): Promise<void> {
    return this.#guard("other", { name, newName }, () => {
      this.#writable();
      // EXDEV makes mv(1) fall back to copy + unlink, which S3 can do.
      fail(Errno.EXDEV, `Cannot rename "${name}" to "${newName}": S3 has no rename`);
    });
  }

  // ---- Files -----------------------------------------------------------------

  open(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply> {
    return this.#guard("lookup", { ino, flags }, async () => {
      const inode = this.#get(ino);
      if (inode.kind === "dir") fail(Errno.EISDIR, `Cannot open directory "${inode.key}"`);
      if ((flags & O_DSYNC) !== 0) {
        fail(Errno.EINVAL, `Cannot open "${inode.key}": O_SYNC and O_DSYNC are not supported`);
      }
      const acc = flags & O_ACCMODE;
      const directIo = (flags & O_DIRECT) !== 0;
      if (inode.upload) {
        fail(Errno.EPERM, `Cannot open "${inode.key}": it is being written by another handle`);
      }
      if (inode.local === "file") {
        if (acc === O_RDONLY) {
          fail(Errno.EPERM, `Cannot read "${inode.key}": it has not been written yet`);
        }
        return this.#openWriter(ctx, inode, true, directIo);
      }
      if (acc !== O_RDONLY && (flags & O_TRUNC) !== 0) {
        this.#writable();
        if (!this.#c.allowOverwrite) {
          fail(Errno.EPERM, `Cannot overwrite "${inode.key}": mount with allowOverwrite`);
        }
        if (inode.opens > 0) {
          fail(Errno.EPERM, `Cannot overwrite "${inode.key}": it is open for reading`);
        }
        return this.#openWriter(ctx, inode, false, directIo);
      }
      if (acc === O_WRONLY) {
        this.#writable();
        fail(
          Errno.EPERM,
          `Cannot write "${inode.key}": existing files can only be replaced (O_TRUNC)`,
        );
      }
      const cached = this.#ttl.serveFromCache && !directIo && inode.etag !== undefined &&
        inode.validUntil > Date.now();
      if (!cached) {
        const info = await this.#client.headObject(this.#c.bucket, inode.key, {
          signal: ctx.signal,
        });
        if (!info) fail(Errno.ENOENT, `Cannot open "${inode.key}": it no longer exists`);
        this.#setStat(inode, info);
      }
      const reader = this.#createReader(inode);
      inode.opens++;
      const fh = this.#nextFh++;
      this.#handles.set(fh, { kind: "read", inode, reader });
      return { fh, directIo };
    });
  }

  #openWriter(ctx: RequestContext, inode: Inode, isNew: boolean, directIo: boolean): OpenReply {
    if (this.#writers >= this.#maxWriters) {
      fail(
        Errno.ENOMEM,
        `Cannot open "${inode.key}" for writing: "${this.#writers}" files are already open for writing`,
      );
    }
    const upload = new Upload({
      client: this.#client,
      bucket: this.#c.bucket,
      key: inode.key,
      partSize: this.#c.writePartSize,
      ifNoneMatch: isNew,
      // Extra parts in flight borrow from the read budget's unused share.
      spare: this.#budget,
      put: {
        storageClass: this.#c.storageClass,
        sse: this.#c.sse,
        sseKmsKeyId: this.#c.sseKmsKeyId,
      },
    });
    inode.upload = upload;
    inode.opens++;
    inode.mtimeMs = Date.now();
    this.#writers++;
    this.#propagateLocal(inode);
    const fh = this.#nextFh++;
    this.#handles.set(fh, { kind: "write", inode, upload, pid: ctx.pid, flushed: false });
    return { fh, directIo };
  }

  /** The one place that decides how an open handle reads. */
  #createReader(inode: Inode): ReadSource {
    return createReader({
      client: this.#client,
      bucket: this.#c.bucket,
      key: inode.key,
      etag: inode.etag!,
      size: inode.size,
      partSize: this.#c.readPartSize,
      budget: this.#budget,
      cache: this.#cache,
      pool: this.#pool,
    });
  }

  read(
    ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    size: number,
  ): Promise<Uint8Array> {
    return this.#guard("read", { ino, fh, offset, size }, () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "read") {
        fail(Errno.EBADF, `Cannot read "${h.inode.key}": handle is for writing`);
      }
      return h.reader.read(offset, size, ctx.signal);
    });
  }

  write(
    _ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    return this.#guard("write", { ino, fh, offset, size: data.byteLength }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "write") {
        fail(Errno.EBADF, `Cannot write "${h.inode.key}": handle is open for reading`);
      }
      try {
        return await h.upload.write(offset, data);
      } catch (err) {
        this.#afterFailure(h.inode, h.upload);
        throw err;
      }
    });
  }

  flush(ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "write") return;
      h.flushed = true;
      const u = h.upload;
      if (u.state === "failed") throw u.failure!;
      if (u.state === "done") return;
      // close() from another process (a dup'd or inherited descriptor) or
      // of an empty file defers the upload to release: see SEMANTICS.md.
      if (ctx.pid !== h.pid || u.size === 0) return;
      await this.#finishUpload(h.inode, u);
    });
  }

  fsync(_ctx: RequestContext, ino: Ino, fh: FileHandle, _datasync: boolean): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "write") return;
      await this.#finishUpload(h.inode, h.upload);
    });
  }

  release(_ctx: RequestContext, ino: Ino, fh: FileHandle, _flags: number): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      this.#handles.delete(fh);
      try {
        if (h.kind === "write") {
          this.#writers--;
          if (h.upload.state === "open" || h.upload.state === "completing") {
            try {
              await this.#finishUpload(h.inode, h.upload);
            } catch (err) {
              // Nobody sees release errors: log them.
              this.#log.warn("Upload failed at release", { key: h.inode.key, error: err });
            }
          }
        } else if (h.kind === "read") {
          h.reader.close();
          // What the prefetcher did for this handle: the first thing to look at when reads are slow.
          const { requests, bytesRequested, resets, sideReads, reclaims } = h.reader.stats();
          this.#log.debug("Read handle closed", {
            key: h.inode.key,
            requests,
            bytesRequested,
            resets,
            sideReads,
            reclaims,
            pool: this.#pool.stats(),
          });
        }
      } finally {
        h.inode.opens--;
        this.#maybeDrop(h.inode);
      }
    });
  }

  /** Completes an upload and moves the inode from local to remote state. */
  async #finishUpload(inode: Inode, upload: Upload): Promise<void> {
    let result: { etag: string; size: number };
    try {
      result = await upload.complete();
    } catch (err) {
      this.#afterFailure(inode, upload);
      throw err;
    }
    if (inode.upload !== upload) return;
    inode.upload = null;
    inode.local = "none";
    inode.etag = result.etag;
    inode.size = result.size;
    inode.mtimeMs = Date.now();
    inode.validUntil = Date.now() + this.#ttl.statMs;
    // Directories created by mkdir above the file now exist in S3.
    const touched: Inode[] = [inode];
    for (let d = inode.parent; d !== this.#root; d = d.parent) {
      if (d.local === "dir") {
        d.local = "none";
        d.validUntil = Date.now() + this.#ttl.statMs;
        touched.push(d);
      }
    }
    for (const t of touched) this.#propagateLocal(t);
  }

  /** After a failed upload: a new file disappears; an overwritten one shows the old object again. */
  #afterFailure(inode: Inode, upload: Upload): void {
    if (upload.state !== "failed" || inode.upload !== upload) return;
    inode.upload = null;
    if (inode.local === "file") {
      inode.local = "none";
      this.#detach(inode);
    } else {
      this.#propagateLocal(inode);
    }
  }

  // ---- Directories -----------------------------------------------------------

  opendir(_ctx: RequestContext, ino: Ino, _flags: number): Promise<OpenReply> {
    return this.#guard("list", { ino }, () => {
      const inode = this.#dir(ino);
      inode.opens++;
      const fh = this.#nextFh++;
      this.#handles.set(fh, {
        kind: "dir",
        inode,
        dir: { stream: null, window: [], base: 0, produced: 0 },
      });
      return Promise.resolve({ fh });
    });
  }

  readdir(
    ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    plus: boolean,
    add: (e: DirEntry) => boolean,
  ): Promise<void> {
    return this.#guard("list", { ino, fh, offset }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "dir") {
        fail(Errno.EBADF, `Cannot list "${h.inode.key}": not a directory handle`);
      }
      const dir = h.inode;
      if (offset === 0) {
        if (!add(this.#dotEntry(".", dir, 1, plus))) return;
        offset = 1;
      }
      if (offset === 1) {
        if (!add(this.#dotEntry("..", dir.parent, 2, plus))) return;
        offset = 2;
      }
      const s = h.dir;
      let idx = offset - FIRST_ENTRY_COOKIE;
      if (!s.stream || idx < s.base) this.#restartListing(dir, s);
      for (;;) {
        let e: ListedEntry | null;
        if (idx < s.produced) {
          e = s.window[idx - s.base]!;
        } else {
          e = await s.stream!.next(ctx.signal);
          if (!e) return;
          s.window.push(e);
          s.produced++;
          if (s.window.length > DIR_WINDOW) {
            s.window.shift();
            s.base++;
          }
          if (idx >= s.produced) continue; // skipping forward to the requested cookie
        }
        if (!this.#emit(dir, e, idx + FIRST_ENTRY_COOKIE + 1, plus, add)) return;
        idx++;
      }
    });
  }

  #restartListing(dir: Inode, s: DirHandleState): void {
    const local: { name: string; kind: Kind }[] = [];
    for (const c of dir.localChildren!.values()) local.push({ name: c.name, kind: c.kind });
    s.stream = new DirStream({
      client: this.#client,
      bucket: this.#c.bucket,
      dirKey: dir.key,
      local,
    });
    s.window = [];
    s.base = 0;
    s.produced = 0;
  }

  /** Offers one entry to `add`; returns false when the reply is full. */
  #emit(
    dir: Inode,
    e: ListedEntry,
    nextOffset: number,
    plus: boolean,
    add: (e: DirEntry) => boolean,
  ): boolean {
    if (!plus) {
      const existing = e.source === "local" ? localOf(dir, e.name) : dir.children!.get(e.name);
      if (e.source === "local" && !existing) return true;
      if (existing && existing.kind === "file" && e.source === "remote" && e.kind === "file") {
        if (!isLocal(existing)) this.#setStat(existing, e.info);
      }
      const ino = existing && existing.kind === e.kind ? existing.ino : this.#nextIno++;
      return add({ name: e.name, ino, type: e.kind === "dir" ? S_IFDIR : S_IFREG, nextOffset });
    }
    const child = this.#childFromListing(dir, e);
    if (!child) return true; // a local entry that vanished meanwhile
    const ok = add({
      name: e.name,
      ino: child.ino,
      type: child.kind === "dir" ? S_IFDIR : S_IFREG,
      nextOffset,
      entry: this.#entry(child),
    });
    if (ok) child.lookups++;
    else this.#maybeDrop(child);
    return ok;
  }

  #childFromListing(dir: Inode, e: ListedEntry): Inode | null {
    if (e.source === "local") {
      const local = localOf(dir, e.name);
      return local ? this.#answer(dir, local) : null;
    }
    return this.#applyRemote(
      dir,
      e.name,
      e.kind === "dir" ? { kind: "dir" } : { kind: "file", info: e.info },
    );
  }

  #dotEntry(name: string, inode: Inode, nextOffset: number, plus: boolean): DirEntry {
    // The kernel takes no reference for "." and "..", so neither do we.
    const e: DirEntry = { name, ino: inode.ino, type: S_IFDIR, nextOffset };
    if (plus) e.entry = this.#entry(inode);
    return e;
  }

  releasedir(_ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void> {
    return this.#guard("list", { ino, fh }, () => {
      const h = this.#handle(fh, ino);
      this.#handles.delete(fh);
      h.inode.opens--;
      this.#maybeDrop(h.inode);
      return Promise.resolve();
    });
  }

  statfs(_ctx: RequestContext, _ino: Ino): Promise<StatFs> {
    return Promise.resolve({
      blocks: STATFS_HUGE,
      bfree: STATFS_HUGE,
      bavail: STATFS_HUGE,
      files: STATFS_HUGE,
      ffree: STATFS_HUGE,
      bsize: 512,
      frsize: 512,
      namelen: NAME_MAX,
    });
  }

  // ---- Inode table -------------------------------------------------------------

  async #lookupChild(
    parent: Inode,
    name: string,
    signal: AbortSignal | undefined,
    forceRemote: boolean,
  ): Promise<Inode | null> {
    const negKey = this.#negKey(parent, name);
    if (this.#ttl.serveFromCache && !forceRemote) {
      const c = parent.children!.get(name) ?? localOf(parent, name);
      if (c && (isLocal(c) || c.validUntil > Date.now())) return c;
      const until = this.#negative.get(negKey);
      if (!c && until !== undefined) {
        if (until > Date.now()) return null;
        this.#negative.delete(negKey);
      }
    }
    const remote = await this.#remoteLookup(parent, name, signal);
    const child = this.#applyRemote(parent, name, remote);
    if (this.#ttl.negativeMs > 0) {
      if (child) this.#negative.delete(negKey);
      else this.#rememberMissing(negKey);
    }
    return child;
  }

  /** HeadObject(key) and ListObjectsV2(key + "/", max-keys 1) at once; a directory wins. */
  async #remoteLookup(parent: Inode, name: string, signal?: AbortSignal): Promise<Remote> {
    const key = parent.key + name;
    const headAbort = new AbortController();
    const onAbort = () => headAbort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const head = this.#client.headObject(this.#c.bucket, key, { signal: headAbort.signal });
    head.catch(() => {}); // settled below, or abandoned when the directory wins
    try {
      const page = await this.#client.listObjects(this.#c.bucket, {
        prefix: key + "/",
        delimiter: "/",
        maxKeys: 1,
        signal,
      });
      if (page.objects.length > 0 || page.commonPrefixes.length > 0) {
        headAbort.abort();
        return { kind: "dir" };
      }
      const info = await head;
      return info ? { kind: "file", info } : null;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Applies what S3 said about `name`: remote directory > local state > remote file. */
  #applyRemote(parent: Inode, name: string, remote: Remote): Inode | null {
    const existing = parent.children!.get(name);
    const local = localOf(parent, name);
    if (remote?.kind === "dir") {
      if (existing?.kind === "dir") {
        existing.validUntil = Date.now() + this.#ttl.statMs;
        return existing;
      }
      if (local?.kind === "dir") return this.#answer(parent, local);
      return this.#newChild(parent, name, "dir", undefined);
    }
    if (local) return this.#answer(parent, local);
    if (remote?.kind === "file") {
      if (existing?.kind === "file") {
        this.#setStat(existing, remote.info);
        return existing;
      }
      return this.#newChild(parent, name, "file", remote.info);
    }
    if (existing) this.#detach(existing);
    return null;
  }

  /** Makes `name` answer with `inode` (already attached through the local map). */
  #answer(parent: Inode, inode: Inode): Inode {
    const old = parent.children!.get(inode.name);
    if (old === inode) return inode;
    parent.children!.set(inode.name, inode);
    if (old) this.#unmapShadowed(old);
    return inode;
  }

  /** `inode` lost its name in `children`; it stays attached only while it is local. */
  #unmapShadowed(inode: Inode): void {
    if (inode.parent.localChildren!.get(localKey(inode.kind, inode.name)) === inode) return;
    inode.attached = false;
    this.#maybeDrop(inode);
  }

  #newChild(parent: Inode, name: string, kind: Kind, info: ObjectInfo | undefined): Inode {
    const old = parent.children!.get(name);
    const inode: Inode = {
      ino: this.#nextIno++,
      kind,
      parent,
      name,
      key: parent.key + name + (kind === "dir" ? "/" : ""),
      lookups: 0,
      opens: 0,
      size: 0,
      etag: undefined,
      mtimeMs: kind === "dir" ? this.#mountTimeMs : Date.now(),
      validUntil: Date.now() + this.#ttl.statMs,
      local: "none",
      upload: null,
      attached: true,
      children: kind === "dir" ? new Map() : null,
      localChildren: kind === "dir" ? new Map() : null,
    };
    if (info) this.#setStat(inode, info);
    parent.children!.set(name, inode);
    this.#inodes.set(inode.ino, inode);
    if (old) this.#unmapShadowed(old);
    return inode;
  }

  #setStat(inode: Inode, info: ObjectInfo): void {
    inode.size = info.size;
    inode.etag = info.etag;
    inode.mtimeMs = info.lastModified.getTime();
    inode.validUntil = Date.now() + this.#ttl.statMs;
  }

  /** Unmaps `inode` from its parent's name (it stays alive while referenced). */
  #detach(inode: Inode): void {
    if (!inode.attached || inode === this.#root) return;
    const parent = inode.parent;
    if (parent.children!.get(inode.name) === inode) parent.children!.delete(inode.name);
    inode.attached = false;
    const key = localKey(inode.kind, inode.name);
    if (parent.localChildren!.get(key) === inode) {
      parent.localChildren!.delete(key);
      this.#propagateLocal(parent);
    }
    this.#maybeDrop(inode);
  }

  /** Keeps each ancestor's `localChildren` in step with `inode`'s local state. */
  #propagateLocal(inode: Inode): void {
    for (let n = inode; n !== this.#root && n.attached; n = n.parent) {
      const locals = n.parent.localChildren!;
      const key = localKey(n.kind, n.name);
      const local = isLocal(n);
      if (local === (locals.get(key) === n)) return;
      if (local) locals.set(key, n);
      else locals.delete(key);
      // A shadowed file that stops being local loses its last link to the tree.
      if (!local && n.parent.children!.get(n.name) !== n) {
        n.attached = false;
        this.#maybeDrop(n);
      }
    }
  }

  #maybeDrop(inode: Inode): void {
    if (inode === this.#root || inode.lookups > 0 || inode.opens > 0 || isLocal(inode)) return;
    this.#inodes.delete(inode.ino);
    if (inode.attached && inode.parent.children!.get(inode.name) === inode) {
      inode.parent.children!.delete(inode.name);
    }
    inode.attached = false;
  }

  #negKey(parent: Inode, name: string): string {
    return `${parent.ino}/${name}`;
  }

  #rememberMissing(key: string): void {
    this.#negative.delete(key);
    this.#negative.set(key, Date.now() + this.#ttl.negativeMs);
    if (this.#negative.size > NEGATIVE_CACHE_MAX) {
      // Maps iterate in insertion order: drop the oldest entry.
      this.#negative.delete(this.#negative.keys().next().value!);
    }
  }

  // ---- Helpers -------------------------------------------------------------------

  #get(ino: Ino): Inode {
    const inode = this.#inodes.get(ino);
    if (!inode) fail(Errno.ENOENT, `Unknown inode "${ino}"`);
    return inode;
  }

  #dir(ino: Ino): Inode {
    const inode = this.#get(ino);
    if (inode.kind !== "dir") fail(Errno.ENOTDIR, `Inode "${ino}" is not a directory`);
    return inode;
  }

  #handle(fh: FileHandle, ino: Ino): Handle {
    const h = this.#handles.get(fh);
    if (!h || h.inode.ino !== ino) fail(Errno.EBADF, `Unknown handle "${fh}" for inode "${ino}"`);
    return h;
  }

  #checkName(name: string, invalidErrno: number): void {
    if (utf8Length(name) > NAME_MAX) fail(Errno.ENAMETOOLONG, `Name "${name}" is too long`);
    if (!isValidName(name)) fail(invalidErrno, `Invalid name "${name}"`);
  }

  #writable(): void {
    if (this.#c.readOnly) fail(Errno.EROFS, "Cannot modify a read-only mount");
  }

  #attr(inode: Inode): Attr {
    const c = this.#c;
    const size = inode.kind === "dir" ? 0 : inode.upload ? inode.upload.size : inode.size;
    const t = inode.mtimeMs;
    return {
      ino: inode.ino,
      size,
      blocks: Math.ceil(size / 512),
      atimeMs: t,
      mtimeMs: t,
      ctimeMs: t,
      mode: inode.kind === "dir" ? S_IFDIR | c.dirMode : S_IFREG | c.fileMode,
      nlink: inode.kind === "dir" ? 2 : 1,
      uid: c.uid,
      gid: c.gid,
      blksize: 4096,
    };
  }

  #entry(inode: Inode): Entry {
    return {
      ino: inode.ino,
      generation: 0,
      attr: this.#attr(inode),
      entryTtlMs: this.#ttl.kernelMs,
      attrTtlMs: this.#ttl.kernelMs,
    };
  }

  /** Runs `fn` and turns whatever it throws into an FsError (logged once). */
  async #guard<T>(
    op: FsOp,
    context: Record<string, unknown>,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toFsError(err, op, context);
    }
  }
}
