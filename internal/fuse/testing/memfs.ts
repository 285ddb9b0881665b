/**
 * An in-memory `FileSystem` for testing the FUSE layer with real tools:
 * plain Maps, POSIX-like semantics (random writes, truncate, rename), no S3.
 * It counts lookups and forgets so tests can check reference accounting.
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
  O_TRUNC,
  type OpenReply,
  type RequestContext,
  ROOT_INO,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type SetattrChanges,
  type StatFs,
} from "../../fs/api.ts";
import { RENAME_NOREPLACE } from "../abi.ts";

interface Node {
  attr: Attr;
  data: Uint8Array;
  children: Map<string, Ino> | null;
  parent: Ino;
  nlookup: number;
}

export interface MemFsOptions {
  uid?: number;
  gid?: number;
  ttlMs?: number;
}

export class MemFs implements FileSystem {
  readonly nodes = new Map<Ino, Node>();
  #nextIno = ROOT_INO + 1;
  #nextFh = 1;
  readonly #uid: number;
  readonly #gid: number;
  readonly #ttl: number;
  inited = false;
  destroyed = 0;
  forgets = 0;
  /** Called at the start of every read; a test can make reads slow or fail. */
  onRead: ((ctx: RequestContext) => Promise<void>) | null = null;

  constructor(options: MemFsOptions = {}) {
    this.#uid = options.uid ?? 0;
    this.#gid = options.gid ?? 0;
    this.#ttl = options.ttlMs ?? 1000;
    this.nodes.set(ROOT_INO, this.#newNode(ROOT_INO, S_IFDIR | 0o755, ROOT_INO));
  }

  #newNode(ino: Ino, mode: number, parent: Ino): Node {
    const now = Date.now();
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      attr: {
        ino,
        size: 0,
        blocks: 0,
        atimeMs: now,
        mtimeMs: now,
        ctimeMs: now,
        mode,
        nlink: dir ? 2 : 1,
        uid: this.#uid,
        gid: this.#gid,
        blksize: 4096,
      },
      data: new Uint8Array(0),
      children: dir ? new Map() : null,
      parent,
      nlookup: 0,
    };
  }

  #node(ino: Ino): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError(Errno.ESTALE, `No inode "${ino}"`);
    return n;
  }

  #dir(ino: Ino): Map<string, Ino> {
    const n = this.#node(ino);
    if (!n.children) throw new FsError(Errno.ENOTDIR, `Inode "${ino}" is not a directory`);
    return n.children;
  }

  #entry(ino: Ino): Entry {
    const n = this.#node(ino);
    return {
      ino,
      generation: 0,
      attr: { ...n.attr },
      entryTtlMs: this.#ttl,
      attrTtlMs: this.#ttl,
    };
  }

  /** Creates a file directly (no FUSE), e.g. to prepare a large directory. */
  addFile(parent: Ino, name: string, content: Uint8Array = new Uint8Array(0)): Ino {
    const ino = this.#nextIno++;
    const n = this.#newNode(ino, S_IFREG | 0o644, parent);
    n.data = content.slice();
    n.attr.size = content.byteLength;
    n.attr.blocks = Math.ceil(content.byteLength / 512);
    this.nodes.set(ino, n);
    this.#dir(parent).set(name, ino);
    return ino;
  }

  /** Replaces a file's content behind the kernel's back (a "remote" change). */
  replaceContent(ino: Ino, content: Uint8Array): void {
    const n = this.#node(ino);
    n.data = content.slice();
    n.attr.size = content.byteLength;
    n.attr.blocks = Math.ceil(content.byteLength / 512);
    n.attr.mtimeMs = Date.now();
  }

  /** Removes a name behind the kernel's back. */
  removeName(parent: Ino, name: string): void {
    this.#dir(parent).delete(name);
  }

  init(): Promise<void> {
    this.inited = true;
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.destroyed++;
    return Promise.resolve();
  }

  lookup(_ctx: RequestContext, parent: Ino, name: string): Promise<Entry> {
    const ino = this.#dir(parent).get(name);
    if (ino === undefined) return Promise.reject(new FsError(Errno.ENOENT, `No "${name}"`));
    this.#node(ino).nlookup++;
    return Promise.resolve(this.#entry(ino));
  }

  forget(ino: Ino, nlookup: number): void {
    this.forgets += nlookup;
    const n = this.nodes.get(ino);
    if (n && ino !== ROOT_INO) n.nlookup = Math.max(0, n.nlookup - nlookup);
  }

  getattr(_ctx: RequestContext, ino: Ino): Promise<AttrReply> {
    return Promise.resolve({ attr: { ...this.#node(ino).attr }, ttlMs: this.#ttl });
  }

  setattr(_ctx: RequestContext, ino: Ino, ch: SetattrChanges): Promise<AttrReply> {
    const n = this.#node(ino);
    if (ch.mode !== undefined) n.attr.mode = (n.attr.mode & S_IFMT) | (ch.mode & 0o7777);
    if (ch.uid !== undefined) n.attr.uid = ch.uid;
    if (ch.gid !== undefined) n.attr.gid = ch.gid;
    if (ch.size !== undefined) this.#resize(n, ch.size, true);
    if (ch.atimeMs !== undefined) n.attr.atimeMs = ch.atimeMs === "now" ? Date.now() : ch.atimeMs;
    if (ch.mtimeMs !== undefined) n.attr.mtimeMs = ch.mtimeMs === "now" ? Date.now() : ch.mtimeMs;
    n.attr.ctimeMs = Date.now();
    return Promise.resolve({ attr: { ...n.attr }, ttlMs: this.#ttl });
  }

  #resize(n: Node, size: number, exact: boolean): void {
    if (size > n.data.byteLength || (exact && size < n.data.byteLength)) {
      const cap = exact ? size : Math.max(size, n.data.byteLength * 2);
      const next = new Uint8Array(cap);
      next.set(n.data.subarray(0, Math.min(n.attr.size, size)));
      n.data = next;
    }
    if (size < n.attr.size) n.data.fill(0, size, n.attr.size);
    n.attr.size = size;
    n.attr.blocks = Math.ceil(size / 512);
  }

  #create(parent: Ino, name: string, mode: number): Entry {
    const dir = this.#dir(parent);
    if (dir.has(name)) throw new FsError(Errno.EEXIST, `"${name}" exists`);
    const ino = this.#nextIno++;
    const n = this.#newNode(ino, mode, parent);
    n.nlookup = 1;
    this.nodes.set(ino, n);
    dir.set(name, ino);
    if ((mode & S_IFMT) === S_IFDIR) this.#node(parent).attr.nlink++;
    return this.#entry(ino);
  }

  mknod(_ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry> {
    if ((mode & S_IFMT) !== S_IFREG) {
      return Promise.reject(new FsError(Errno.EINVAL, "Only regular files"));
    }
    return Promise.resolve(this.#create(parent, name, mode));
  }

  mkdir(_ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry> {
    return Promise.resolve(this.#create(parent, name, S_IFDIR | (mode & 0o7777)));
  }

  unlink(_ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const dir = this.#dir(parent);
    const ino = dir.get(name);
    if (ino === undefined) return Promise.reject(new FsError(Errno.ENOENT, `No "${name}"`));
    if (this.#node(ino).children) return Promise.reject(new FsError(Errno.EISDIR, "Directory"));
    dir.delete(name);
    return Promise.resolve();
  }

  rmdir(_ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const dir = this.#dir(parent);
    const ino = dir.get(name);
    if (ino === undefined) return Promise.reject(new FsError(Errno.ENOENT, `No "${name}"`));
    const n = this.#node(ino);
    if (!n.children) return Promise.reject(new FsError(Errno.ENOTDIR, "Not a directory"));
    if (n.children.size > 0) return Promise.reject(new FsError(Errno.ENOTEMPTY, "Not empty"));
    dir.delete(name);
    this.#node(parent).attr.nlink--;
    return Promise.resolve();
  }

  rename(
    _ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    const from = this.#dir(parent);
    const to = this.#dir(newParent);
    const ino = from.get(name);
    if (ino === undefined) return Promise.reject(new FsError(Errno.ENOENT, `No "${name}"`));
    if (flags & RENAME_NOREPLACE && to.has(newName)) {
      return Promise.reject(new FsError(Errno.EEXIST, `"${newName}" exists`));
    }
    from.delete(name);
    to.set(newName, ino);
    this.#node(ino).parent = newParent;
    return Promise.resolve();
  }

  open(_ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply> {
    const n = this.#node(ino);
    if (n.children) return Promise.reject(new FsError(Errno.EISDIR, "Directory"));
    if (flags & O_TRUNC) this.#resize(n, 0, true);
    return Promise.resolve({ fh: this.#nextFh++ });
  }

  async read(
    ctx: RequestContext,
    ino: Ino,
    _fh: FileHandle,
    offset: number,
    size: number,
  ): Promise<Uint8Array> {
    if (this.onRead) await this.onRead(ctx);
    const n = this.#node(ino);
    const end = Math.min(n.attr.size, offset + size);
    return offset >= end ? new Uint8Array(0) : n.data.subarray(offset, end);
  }

  write(
    _ctx: RequestContext,
    ino: Ino,
    _fh: FileHandle,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    const n = this.#node(ino);
    const end = offset + data.byteLength;
    if (end > n.attr.size) this.#resize(n, end, false);
    n.data.set(data, offset); // copies: `data` is a view into the session's buffer
    n.attr.mtimeMs = Date.now();
    return Promise.resolve(data.byteLength);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  release(): Promise<void> {
    return Promise.resolve();
  }

  fsync(): Promise<void> {
    return Promise.resolve();
  }

  opendir(_ctx: RequestContext, ino: Ino): Promise<OpenReply> {
    this.#dir(ino);
    return Promise.resolve({ fh: this.#nextFh++ });
  }

  readdir(
    _ctx: RequestContext,
    ino: Ino,
    _fh: FileHandle,
    offset: number,
    plus: boolean,
    add: (e: DirEntry) => boolean,
  ): Promise<void> {
    const n = this.#node(ino);
    const names = [...this.#dir(ino).keys()].sort();
    const all: [string, Ino][] = [
      [".", ino],
      ["..", n.parent],
      ...names.map((
        name,
      ): [string, Ino] => [name, n.children!.get(name)!]),
    ];
    for (let i = offset; i < all.length; i++) {
      const [name, child] = all[i]!;
      const dot = name === "." || name === "..";
      const cn = this.#node(child);
      const e: DirEntry = { name, ino: child, type: cn.attr.mode & S_IFMT, nextOffset: i + 1 };
      if (plus && !dot) e.entry = this.#entry(child);
      if (!add(e)) break;
      if (plus && !dot) cn.nlookup++;
    }
    return Promise.resolve();
  }

  releasedir(): Promise<void> {
    return Promise.resolve();
  }

  statfs(): Promise<StatFs> {
    return Promise.resolve({
      blocks: 1 << 20,
      bfree: 1 << 19,
      bavail: 1 << 19,
      files: 1 << 16,
      ffree: 1 << 15,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    });
  }
}
