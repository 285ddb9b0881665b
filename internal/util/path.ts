/**
 * Lexical path normalisation for policy checks (is this path inside that
 * directory?): resolves ".", ".." and repeated slashes without touching the
 * file system, so a missing or dead-mounted path can still be judged.
 *
 * @module
 */

/** Normalises an absolute path: "/a/./b//../c/" → "/a/c". ".." never climbs above "/". */
export function normalisePath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return "/" + parts.join("/");
}

/** True when `path` is `dir` itself or lies below it (both normalised). */
export function isInside(path: string, dir: string): boolean {
  const p = normalisePath(path);
  const d = normalisePath(dir);
  return p === d || p.startsWith(d === "/" ? "/" : d + "/");
}
