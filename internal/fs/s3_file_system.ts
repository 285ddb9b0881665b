/**
 * `S3FileSystem`: the `FileSystem` the FUSE session calls, over one bucket
 * (and optional prefix) through an `ObjectClient`, with Mountpoint for S3's
 * semantics. SEMANTICS.md is the contract; this module decides each
 * operation's refusals and order of effects, and delegates the rest:
 *
 * - `InodeTable` (inode_table.ts): inodes, children by kind and name, what
 *   S3 says about a name, local state, forget, the negative cache;
 * - `DirHandle` (dir_handle.ts): readdir cookies and emission;
 * - `ReadHandle` / `WriteHandle` (file_handle.ts): an open file's reader or
 *   upload and when the upload completes; `OpenFiles` there holds what open
 *   files share (read budget, buffer pool, data cache, writer cap).
 *
 * Namespace changes in one directory (create, mkdir, unlink, rmdir) are
 * serialized with a keyed mutex; lookups run concurrently and apply their
 * result synchronously after the S3 round trip, against current state.
 *
 * The data cache, when there is one, comes from the caller (built once per
 * mount by `internal/mount`); the file system closes it at `destroy()`.
 *
 * @module
 */

import {
  type Adoption,
  type AttrReply,
  type DirEntry,
  type Entry,
  Errno,
  fail,
  type FileHandle,
  type FileSystem,
  type Ino,
  O_ACCMODE,
  O_DIRECT,
  O_DSYNC,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  type OpenReply,
  type RequestContext,
  S_IFMT,
  S_IFREG,
  type SetattrChanges,
  type StatFs,
} from "./api.ts";
import { type FsConfig, type Ttls, ttlsOf, validateFsConfig } from "./config.ts";
import type { DataCache } from "./prefetch/mod.ts";
import { DirHandle } from "./dir_handle.ts";
import { type FsOp, toFsError } from "./errno.ts";
import {
  LostWriteHandle,
  OpenFiles,
  type ReadHandle,
  type ResumedReadHandle,
  type WriteHandle,
} from "./file_handle.ts";
import { InodeTable, isLocal, type Kind } from "./inode_table.ts";
import { KeyedMutex } from "./mutex.ts";
import { isValidName, NAME_MAX, utf8Length } from "./names.ts";
import type { UploadLedger } from "./upload.ts";
import { log } from "../log/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import { isS3Error, type ObjectClient } from "../s3/object_client.ts";

type Handle = ReadHandle | ResumedReadHandle | WriteHandle | LostWriteHandle | DirHandle;

/** statfs numbers, as large as Mountpoint's (u64::MAX / 1024 rounded to 2^54), exact in a double. */
const STATFS_HUGE = 2 ** 54;

export interface S3FileSystemOptions {
  /** The mount's disk data cache; the file system closes it at `destroy()`. */
  cache?: DataCache;
  /** Told of every multipart upload while it exists (the takeover journal). */
  ledger?: UploadLedger;
}

export class S3FileSystem implements FileSystem {
  readonly #client: ObjectClient;
  readonly #c: FsConfig;
  readonly #ttl: Ttls;
  readonly #table: InodeTable;
  readonly #handles = new Map<FileHandle, Handle>();
  readonly #dirLocks = new KeyedMutex<Ino>();
  readonly #files: OpenFiles;
  readonly #ledger: UploadLedger | undefined;
  #nextFh = 1;

  constructor(client: ObjectClient, config: FsConfig, opts: S3FileSystemOptions = {}) {
    validateFsConfig(config);
    this.#client = client;
    this.#c = config;
    this.#ttl = ttlsOf(config.metadataTtl);
    this.#table = new InodeTable({ client, config, ttl: this.#ttl });
    this.#ledger = opts.ledger;
    this.#files = new OpenFiles({
      client,
      config,
      table: this.#table,
      cache: opts.cache,
      ledger: opts.ledger,
    });
  }

  /** Inodes held in memory: the tests of the memory bound read it. */
  get inodeCount(): number {
    return this.#table.size;
  }

  /** Open file and directory handles: the model test checks none leaks. */
  get handleCount(): number {
    return this.#handles.size;
  }

  /** Open files being written: a planned hand-over waits for them (internal/mount/run.ts). */
  get writeHandleCount(): number {
    let n = 0;
    for (const h of this.#handles.values()) if (h.kind === "write") n++;
    return n;
  }

  // ---- Lifecycle -----------------------------------------------------------

  /**
   * Completes uploads whose handle the application already closed (their
   * flush was deferred to a release that will now never come) and aborts
   * uploads still open, so no partial object is created; then closes the
   * data cache, which waits for its background writes.
   */
  async destroy(): Promise<void> {
    const files: (ReadHandle | ResumedReadHandle | WriteHandle)[] = [];
    for (const h of this.#handles.values()) {
      if (h.kind === "read" || h.kind === "write") files.push(h);
    }
    this.#handles.clear();
    await this.#files.destroy(files);
  }

  // ---- Takeover (internal/takeover) ------------------------------------------

  pinnedVersion(fh: FileHandle): string | undefined {
    const h = this.#handles.get(fh);
    if (h instanceof LostWriteHandle || h?.kind !== "read") return undefined;
    return "version" in h ? h.version : h.inode.etag;
  }

  /**
   * Continues a dead predecessor's session: its nodes keep their numbers
   * (stat unknown until asked), its directory handles list again from the
   * cookie the kernel sends, its read handles serve the version they pinned
   * or ESTALE, and its write handles fail with EIO, their uploads aborted
   * here in the background (the journal keeps them until the abort is done).
   */
  adopt(a: Adoption): void {
    const t = this.#table;
    const opens = new Map<Ino, number>();
    for (const h of a.handles) opens.set(h.ino, (opens.get(h.ino) ?? 0) + 1);
    for (const n of a.nodes) {
      const parent = t.find(n.parent);
      if (parent?.kind !== "dir") continue;
      t.adopt(parent, n.ino, n.name, n.kind, n.lookups, opens.get(n.ino) ?? 0);
    }
    t.continueFrom(a.nextIno);
    t.root.opens += opens.get(t.root.ino) ?? 0;
    for (const h of a.handles) {
      const inode = t.find(h.ino);
      if (!inode) continue;
      let handle: Handle;
      if (inode.kind === "dir") {
        handle = new DirHandle(inode, { client: this.#client, bucket: this.#c.bucket, table: t });
      } else if (h.version !== undefined && (h.flags & O_ACCMODE) === O_RDONLY) {
        handle = this.#files.resumedReader(inode, h.version);
      } else {
        handle = new LostWriteHandle(inode);
      }
      this.#handles.set(h.fh, handle);
    }
    this.#nextFh = Math.max(this.#nextFh, a.nextFh);
    for (const u of a.uploads) this.#abortLeftUpload(u.uploadId, u.key);
  }

  async #abortLeftUpload(uploadId: string, key: string): Promise<void> {
    try {
      await this.#client.abortMultipartUpload(this.#c.bucket, key, uploadId);
    } catch (err) {
      if (!isS3Error(err, "NoSuchUpload")) {
        log.with({ component: "fs" }).warn("Cannot abort an upload a replaced server left", {
          key,
          error: errorMessage(err),
        });
        return;
      }
    }
    this.#ledger?.ended(uploadId);
  }

  // ---- Lookup and attributes -----------------------------------------------

  lookup(ctx: RequestContext, parentIno: Ino, name: string): Promise<Entry> {
    return this.#guard("lookup", { parent: parentIno, name }, async () => {
      const parent = this.#table.dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      const child = await this.#table.lookupChild(parent, name, ctx.signal, false);
      if (!child) fail(Errno.ENOENT, `Cannot find "${name}" in "${parent.key}"`);
      child.lookups++;
      return this.#table.entry(child);
    });
  }

  forget(ino: Ino, nlookup: number): void {
    const inode = this.#table.find(ino);
    if (inode) this.#table.forget(inode, nlookup);
  }

  getattr(ctx: RequestContext, ino: Ino, fh?: FileHandle): Promise<AttrReply> {
    return this.#guard("lookup", { ino }, async () => {
      const t = this.#table;
      const inode = t.get(ino);
      if (!inode.attached && inode !== t.root) {
        // Unlinked or replaced: only open handles keep its attributes meaningful.
        if (inode.opens > 0) return { attr: t.attr(inode), ttlMs: this.#ttl.kernelMs };
        fail(Errno.ENOENT, `Cannot stat "${inode.key}": it no longer exists`);
      }
      // An open handle vouches for the stat it was opened on; an adopted node has none yet.
      const known = inode.kind === "dir" || inode.etag !== undefined;
      const fresh = inode === t.root || isLocal(inode) ||
        (fh !== undefined && known && this.#handles.get(fh)?.inode === inode) ||
        inode.validUntil > Date.now();
      if (!fresh) {
        const now = await t.lookupChild(inode.parent, inode.name, ctx.signal, true);
        if (now !== inode) {
          if (now) t.maybeDrop(now);
          fail(Errno.ENOENT, `Cannot stat "${inode.key}": it no longer exists`);
        }
      }
      return { attr: t.attr(inode), ttlMs: this.#ttl.kernelMs };
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
      const inode = this.#table.get(ino);
      const attr = this.#table.attr(inode);
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
      return Promise.resolve({ attr: this.#table.attr(inode), ttlMs: this.#ttl.kernelMs });
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
    const parent = this.#table.dir(parentIno);
    this.#checkName(name, Errno.EINVAL);
    return this.#dirLocks.run(parent.ino, async () => {
      if (!parent.attached) fail(Errno.ENOENT, `Cannot create "${name}": parent was removed`);
      const existing = this.#table.takeRecentMiss(parent, name)
        ? null
        : await this.#table.lookupChild(parent, name, ctx.signal, true);
      if (existing) {
        this.#table.maybeDrop(existing);
        fail(Errno.EEXIST, `Cannot create "${name}" in "${parent.key}": it exists`);
      }
      return this.#table.entry(this.#table.create(parent, name, kind));
    });
  }

  unlink(ctx: RequestContext, parentIno: Ino, name: string): Promise<void> {
    return this.#guard("delete", { parent: parentIno, name }, () => {
      this.#writable();
      if (!this.#c.allowDelete) {
        fail(Errno.EPERM, `Cannot delete "${name}": deletes are disabled (mount with allowDelete)`);
      }
      const parent = this.#table.dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      return this.#dirLocks.run(parent.ino, async () => {
        const child = await this.#table.lookupChild(parent, name, ctx.signal, true);
        if (!child) fail(Errno.ENOENT, `Cannot delete "${name}" in "${parent.key}": not found`);
        if (child.kind === "dir") {
          this.#table.maybeDrop(child);
          fail(Errno.EISDIR, `Cannot unlink directory "${child.key}"`);
        }
        if (child.upload) fail(Errno.EPERM, `Cannot delete "${child.key}": it is being written`);
        // Created but never opened for writing: nothing exists in S3.
        if (child.local !== "file") await this.#client.deleteObject(this.#c.bucket, child.key);
        this.#table.removed(child);
      });
    });
  }

  rmdir(ctx: RequestContext, parentIno: Ino, name: string): Promise<void> {
    return this.#guard("delete", { parent: parentIno, name }, () => {
      this.#writable();
      const parent = this.#table.dir(parentIno);
      this.#checkName(name, Errno.ENOENT);
      return this.#dirLocks.run(parent.ino, async () => {
        const t = this.#table;
        const child = await t.lookupChild(parent, name, ctx.signal, true);
        if (!child) fail(Errno.ENOENT, `Cannot remove "${name}" in "${parent.key}": not found`);
        if (child.kind !== "dir") {
          t.maybeDrop(child);
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
          t.maybeDrop(child);
          fail(Errno.ENOTEMPTY, `Cannot remove "${child.key}": not empty`);
        }
        if (marker) {
          if (!this.#c.allowDelete) {
            t.maybeDrop(child);
            fail(
              Errno.EPERM,
              `Cannot remove "${child.key}": its marker object needs allowDelete to be deleted`,
            );
          }
          await this.#client.deleteObject(this.#c.bucket, child.key);
        }
        t.removed(child);
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

  /** S3 objects cannot be links (SEMANTICS.md S21). */
  symlink(_ctx: RequestContext, _parent: Ino, name: string, target: string): Promise<Entry> {
    return this.#guard("other", { name, target }, () => {
      this.#writable();
      fail(Errno.EPERM, `Cannot create symbolic link "${name}": S3 objects cannot be links`);
    });
  }

  link(_ctx: RequestContext, ino: Ino, _newParent: Ino, newName: string): Promise<Entry> {
    return this.#guard("other", { ino, newName }, () => {
      this.#writable();
      fail(Errno.EPERM, `Cannot create hard link "${newName}": S3 objects have no link count`);
    });
  }

  // ---- Files -----------------------------------------------------------------

  open(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply> {
    return this.#guard("lookup", { ino, flags }, async () => {
      const inode = this.#table.get(ino);
      if (inode.kind === "dir") fail(Errno.EISDIR, `Cannot open directory "${inode.key}"`);
      if (!inode.attached) {
        // The kernel's entry is out of date: ESTALE makes it look the name up again and retry.
        fail(Errno.ESTALE, `Cannot open "${inode.key}": its name now answers with something else`);
      }
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
        return { fh: this.#addHandle(this.#files.writer(inode, true, ctx.pid)), directIo };
      }
      if (acc !== O_RDONLY && (flags & O_TRUNC) !== 0) {
        this.#writable();
        if (!this.#c.allowOverwrite) {
          fail(Errno.EPERM, `Cannot overwrite "${inode.key}": mount with allowOverwrite`);
        }
        if (inode.opens > 0) {
          fail(Errno.EPERM, `Cannot overwrite "${inode.key}": it is open for reading`);
        }
        return { fh: this.#addHandle(this.#files.writer(inode, false, ctx.pid)), directIo };
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
      const justLooked = !cached && !directIo && this.#table.takeRecentHit(inode);
      if (!cached && !justLooked) {
        const info = await this.#client.headObject(this.#c.bucket, inode.key, {
          signal: ctx.signal,
        });
        if (!info) fail(Errno.ENOENT, `Cannot open "${inode.key}": it no longer exists`);
        this.#table.setStat(inode, info);
      }
      return { fh: this.#addHandle(this.#files.reader(inode, justLooked)), directIo };
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
      if (h.kind === "lost") h.fail();
      if (h.kind !== "read") {
        fail(Errno.EBADF, `Cannot read "${h.inode.key}": handle is for writing`);
      }
      return h.read(offset, size, ctx.signal);
    });
  }

  write(
    _ctx: RequestContext,
    ino: Ino,
    fh: FileHandle,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    return this.#guard("write", { ino, fh, offset, size: data.byteLength }, () => {
      const h = this.#handle(fh, ino);
      if (h.kind === "lost") h.fail();
      if (h.kind !== "write") {
        fail(Errno.EBADF, `Cannot write "${h.inode.key}": handle is open for reading`);
      }
      return h.write(offset, data);
    });
  }

  flush(ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind === "lost") h.fail();
      if (h.kind === "write") await h.flush(ctx.pid);
    });
  }

  fsync(_ctx: RequestContext, ino: Ino, fh: FileHandle, _datasync: boolean): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      if (h.kind === "lost") h.fail();
      if (h.kind === "write") await h.complete();
    });
  }

  release(_ctx: RequestContext, ino: Ino, fh: FileHandle, _flags: number): Promise<void> {
    return this.#guard("upload", { ino, fh }, async () => {
      const h = this.#handle(fh, ino);
      this.#handles.delete(fh);
      try {
        if (h.kind === "read" || h.kind === "write") await this.#files.release(h);
      } finally {
        this.#closeHandle(h);
      }
    });
  }

  // ---- Directories -----------------------------------------------------------

  opendir(_ctx: RequestContext, ino: Ino, _flags: number): Promise<OpenReply> {
    return this.#guard("list", { ino }, () => {
      const inode = this.#table.dir(ino);
      const dir = new DirHandle(inode, {
        client: this.#client,
        bucket: this.#c.bucket,
        table: this.#table,
      });
      return Promise.resolve({ fh: this.#addHandle(dir) });
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
    return this.#guard("list", { ino, fh, offset }, () => {
      const h = this.#handle(fh, ino);
      if (h.kind !== "dir") {
        fail(Errno.EBADF, `Cannot list "${h.inode.key}": not a directory handle`);
      }
      return h.readdir(offset, plus, add, ctx.signal);
    });
  }

  releasedir(_ctx: RequestContext, ino: Ino, fh: FileHandle): Promise<void> {
    return this.#guard("list", { ino, fh }, () => {
      const h = this.#handle(fh, ino);
      this.#handles.delete(fh);
      this.#closeHandle(h);
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

  // ---- Helpers -------------------------------------------------------------------

  /** Registers an open handle; it keeps its inode in the table until closed. */
  #addHandle(h: Handle): FileHandle {
    h.inode.opens++;
    const fh = this.#nextFh++;
    this.#handles.set(fh, h);
    return fh;
  }

  #closeHandle(h: Handle): void {
    h.inode.opens--;
    this.#table.maybeDrop(h.inode);
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
