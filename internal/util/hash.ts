/**
 * SHA-256 as lowercase hex: names derived from content (mount IDs, cache
 * directories, tag values) and fingerprints that tell secrets apart without
 * revealing them.
 *
 * @module
 */

/** The SHA-256 of `data` (strings are UTF-8 encoded) as 64 hex characters. */
export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
