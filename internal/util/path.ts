/**
 * Path helpers. Lexical normalisation for policy checks (is this path inside
 * that directory?) resolves ".", ".." and repeated slashes without touching
 * the file system, so a missing or dead-mounted path can still be judged;
 * `dirname` is lexical too; `removeIfPresent` is the one "remove, missing is
 * fine" of the sockets, status files and targets the roles clean up.
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

/** The directory part of `path` ("/" for a name at the root or a bare name). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Removes a file (or an empty directory); one already gone is fine. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
