/**
 * Which S3 key components can be file names.
 *
 * S3 keys may hold anything; a file name may not. Keys with a component that
 * is empty (`a//b`), `.` or `..`, contains NUL, or is longer than 255 bytes
 * are hidden, and so is everything below such a component.
 *
 * @module
 */

export const NAME_MAX = 255;

/** Names sort like the keys they come from: S3's UTF-8 byte order. */
export { compareKeys as compareUtf8 } from "../s3/object_client.ts";

const encoder = new TextEncoder();

export function utf8Length(s: string): number {
  // Fast path: ASCII only.
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return encoder.encode(s).byteLength;
  }
  return s.length;
}

/** True when `name` can be shown as a directory entry. */
export function isValidName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("\0") && utf8Length(name) <= NAME_MAX;
}

/**
 * The S3 keys a listing must have passed before `name` can be emitted in
 * name order: `dirKey + p + "/"` for every proper prefix `p` of `name`
 * followed by a character that sorts before "/" (such a directory `p` lists
 * after `name` in S3 order but sorts before it by name), plus, unless the
 * entry is a remote directory, `dirKey + name + "/"` (a directory of the same
 * name shadows it).
 */
export function blockersOf(dirKey: string, name: string, remoteDir: boolean): string[] {
  const out: string[] = [];
  for (let i = 1; i < name.length; i++) {
    if (name.charCodeAt(i) < 0x2f) out.push(dirKey + name.slice(0, i) + "/");
  }
  if (!remoteDir) out.push(dirKey + name + "/");
  return out;
}
