/**
 * The reference model of what a mount should show: only the bucket's keys,
 * the directories created by mkdir and not yet persisted, and the files
 * being written. `materialize()` is the single definition of the expected
 * tree, so every rule of SEMANTICS.md about the tree (implicit directories,
 * markers, shadowing, hidden keys, precedence) lives in one function.
 *
 * The name rules (which key components are names, how names sort) are
 * written here from SEMANTICS.md, sharing no code with `internal/fs`, so a
 * bug in the file system's own rules shows up as a difference.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * SEMANTICS.md, Tree: a key component is shown unless it is empty, `.` or
 * `..`, contains NUL, or is longer than 255 bytes (it never contains `/`:
 * keys are split on it).
 */
export function isName(component: string): boolean {
  return component !== "" && component !== "." && component !== ".." &&
    !component.includes("\0") && encoder.encode(component).length <= 255;
}

/** SEMANTICS.md, Directories: names sort in UTF-8 byte order, as S3 sorts keys. */
export function compareNames(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < x.length && i < y.length; i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

export type Node =
  | { kind: "dir" }
  | { kind: "file"; size: number; local: boolean };

/** Path ("a/b", no leading slash; the root is "") → what is shown there. */
export type Tree = Map<string, Node>;

export class Model {
  /** Bucket keys and their contents. */
  readonly keys = new Map<string, string>();
  /** Paths created by mkdir and not yet persisted by an upload below them. */
  readonly localDirs = new Set<string>();
  /** Paths of files being written, with the data written so far. */
  readonly writers = new Map<string, string>();

  /** A successful upload of `path`: the key appears and the mkdirs above it are now implicit. */
  uploaded(path: string, content: string): void {
    this.keys.set(path, content);
    for (const d of ancestors(path)) this.localDirs.delete(d);
  }

  /** rmdir's verdict for `path`: ENOTEMPTY, or which marker to delete. */
  rmdirOutcome(path: string): { notEmpty: true } | { notEmpty: false; marker: boolean } {
    const below = path + "/";
    const notEmpty = [...this.keys.keys()].some((k) => k.startsWith(below) && k !== below) ||
      [...this.localDirs].some((d) => d.startsWith(below)) ||
      [...this.writers.keys()].some((w) => w.startsWith(below));
    return notEmpty ? { notEmpty } : { notEmpty, marker: this.keys.has(below) };
  }
}

/** "a/b/c" → ["a", "a/b"]. */
export function ancestors(path: string): string[] {
  const parts = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

/** The expected tree: remote directories > local state > remote files. */
export function materialize(m: Model): Tree {
  const remoteDirs = new Set<string>();
  const remoteFiles = new Map<string, number>();
  for (const [key, content] of m.keys) {
    const comps = key.split("/");
    let valid = true;
    for (let i = 0; i < comps.length - 1; i++) {
      if (!isName(comps[i]!)) {
        valid = false;
        break;
      }
      remoteDirs.add(comps.slice(0, i + 1).join("/"));
    }
    const last = comps[comps.length - 1]!;
    // An empty last component is a directory marker; other invalid names are hidden.
    if (valid && isName(last)) remoteFiles.set(key, encoder.encode(content).length);
  }
  const localDirs = new Set<string>();
  for (const d of m.localDirs) {
    localDirs.add(d);
    for (const a of ancestors(d)) localDirs.add(a);
  }
  for (const w of m.writers.keys()) for (const a of ancestors(w)) localDirs.add(a);

  const tree: Tree = new Map();
  for (const d of remoteDirs) tree.set(d, { kind: "dir" });
  for (const d of localDirs) tree.set(d, { kind: "dir" });
  for (const [w, content] of m.writers) {
    if (!tree.has(w)) tree.set(w, { kind: "file", size: content.length, local: true });
  }
  for (const [f, size] of remoteFiles) {
    if (!tree.has(f)) tree.set(f, { kind: "file", size, local: false });
  }
  return tree;
}

/** Sorted [path, description] pairs, for readable comparisons. */
export function describe(tree: Tree): string[] {
  return [...tree.entries()]
    .sort(([a], [b]) => compareNames(a, b))
    .map(([p, n]) => (n.kind === "dir" ? `${p}/` : `${p} (${n.size})`));
}

export function directories(tree: Tree): string[] {
  return ["", ...[...tree].filter(([, n]) => n.kind === "dir").map(([p]) => p)].sort(compareNames);
}

export function files(tree: Tree): string[] {
  return [...tree].filter(([, n]) => n.kind === "file").map(([p]) => p).sort(compareNames);
}

export function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
