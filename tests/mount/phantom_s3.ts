/**
 * A man-in-the-middle for MinIO that adds *phantom* keys to ListObjectsV2
 * answers: keys MinIO refuses to store (`x/./y`, `x//y`, components longer
 * than 255 bytes, NUL bytes) and a key below an existing object's name
 * (`blue/image.jpg` next to `blue`, which MinIO cannot hold at once). Real
 * S3 can hold all of these, and the mount must hide or shadow them as
 * SEMANTICS.md says (S2, S3), so the tree tests need them in listings.
 *
 * It is a plain HTTP/1.1 proxy over TCP, byte for byte except for list
 * answers: requests keep their Host header and SigV4 signature untouched, so
 * MinIO verifies them as if the client had talked to it directly. Answers
 * are buffered whole, which is fine for the small objects of the tree tests
 * only. Phantoms appear on the first page of a listing (no continuation
 * token or start-after), which is every page a small directory has.
 *
 * @module
 */

const latin1 = new TextDecoder("latin1");
const enc = new TextEncoder();

/** Reads HTTP/1.1 messages from a connection. */
class MessageReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #eof = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk).catch(() => null);
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** The header block without its final blank line, or null at the end of the stream. */
  async head(): Promise<string | null> {
    while (true) {
      const text = latin1.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) return latin1.decode(this.#take(end + 4)).slice(0, end);
      if (!(await this.#fill())) return null;
    }
  }

  async exact(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) throw new Error("Connection closed inside a message body");
    }
    return this.#take(n);
  }

  async line(): Promise<string> {
    while (true) {
      const i = latin1.decode(this.#buf).indexOf("\r\n");
      if (i >= 0) return latin1.decode(this.#take(i + 2)).slice(0, i);
      if (!(await this.#fill())) throw new Error("Connection closed inside a chunked body");
    }
  }

  /** A chunked body, decoded. */
  async chunked(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    while (true) {
      const size = parseInt((await this.line()).split(";")[0], 16);
      if (size === 0) {
        while ((await this.line()) !== "") {
          // trailers
        }
        break;
      }
      parts.push(await this.exact(size));
      await this.exact(2);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  async rest(): Promise<Uint8Array> {
    while (await this.#fill()) {
      // until the peer closes
    }
    return this.#take(this.#buf.length);
  }
}

function header(lines: string[], name: string): string | undefined {
  const l = lines.find((h) => h.toLowerCase().startsWith(`${name}:`));
  return l?.slice(name.length + 1).trim();
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** S3's `encoding-type=url` form of a key ("/" kept). */
function urlEncode(key: string): string {
  return encodeURIComponent(key).replaceAll("%2F", "/");
}

function urlDecode(s: string): string {
  return decodeURIComponent(s.replaceAll("+", " "));
}

function xmlEscape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function xmlUnescape(s: string): string {
  return s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'").replaceAll("&amp;", "&");
}

/** Byte order of UTF-8, as S3 sorts keys. */
function byteCompare(a: string, b: string): number {
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Adds the phantom keys matching the request to a ListObjectsV2 answer. */
function inject(body: Uint8Array, query: URLSearchParams, phantoms: Set<string>): Uint8Array {
  if (query.has("continuation-token") || query.has("start-after")) return body;
  const prefix = query.get("prefix") ?? "";
  const delimiter = query.get("delimiter") ?? "";
  const url = query.get("encoding-type") === "url";
  const decode = (s: string) => (url ? urlDecode(xmlUnescape(s)) : xmlUnescape(s));
  const encode = (k: string) => xmlEscape(url ? urlEncode(k) : k);
  let xml = new TextDecoder().decode(body);

  const contents = new Map<string, string>();
  for (const m of xml.matchAll(/<Contents>[\s\S]*?<\/Contents>/g)) {
    contents.set(decode(/<Key>([\s\S]*?)<\/Key>/.exec(m[0])![1]), m[0]);
  }
  const prefixes = new Map<string, string>();
  for (const m of xml.matchAll(/<CommonPrefixes>[\s\S]*?<\/CommonPrefixes>/g)) {
    prefixes.set(decode(/<Prefix>([\s\S]*?)<\/Prefix>/.exec(m[0])![1]), m[0]);
  }
  let added = 0;
  for (const key of phantoms) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    if (cut >= 0) {
      const p = prefix + rest.slice(0, cut + delimiter.length);
      if (!prefixes.has(p)) {
        prefixes.set(p, `<CommonPrefixes><Prefix>${encode(p)}</Prefix></CommonPrefixes>`);
        added++;
      }
    } else if (!contents.has(key)) {
      contents.set(
        key,
        `<Contents><Key>${encode(key)}</Key><LastModified>2024-01-01T00:00:00.000Z` +
          `</LastModified><ETag>&#34;00000000000000000000000000000000&#34;</ETag>` +
          `<Size>7</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
      added++;
    }
  }
  if (added === 0) return body;
  xml = xml.replace(/<Contents>[\s\S]*?<\/Contents>/g, "")
    .replace(/<CommonPrefixes>[\s\S]*?<\/CommonPrefixes>/g, "");
  const sorted = (m: Map<string, string>) =>
    [...m.entries()].sort((a, b) => byteCompare(a[0], b[0])).map((e) => e[1]).join("");
  const count = contents.size + prefixes.size;
  xml = xml.replace(/<KeyCount>\d+<\/KeyCount>/, `<KeyCount>${count}</KeyCount>`)
    .replace("</ListBucketResult>", `${sorted(contents)}${sorted(prefixes)}</ListBucketResult>`);
  return enc.encode(xml);
}

/** A running proxy; add or remove phantom keys at any time. */
export interface PhantomS3 {
  endpoint: string;
  phantoms: Set<string>;
  close(): Promise<void>;
}

/** Starts the proxy in front of `upstream` ("http://127.0.0.1:port"). */
export function startPhantomS3(upstream: string): PhantomS3 {
  const target = new URL(upstream);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const phantoms = new Set<string>();
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();

  const serve = async (client: Deno.Conn) => {
    const up = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
    conns.add(up);
    const req = new MessageReader(client);
    const res = new MessageReader(up);
    try {
      while (true) {
        const head = await req.head();
        if (head === null) break;
        const lines = head.split("\r\n");
        const [method, path] = lines[0].split(" ");
        if (header(lines.slice(1), "transfer-encoding")) {
          throw new Error("Phantom S3 proxy needs requests with Content-Length");
        }
        const length = Number(header(lines.slice(1), "content-length") ?? 0);
        const body = length > 0 ? await req.exact(length) : new Uint8Array(0);
        await writeAll(up, concat(enc.encode(`${head}\r\n\r\n`), body));

        const rhead = await res.head();
        if (rhead === null) break;
        const rlines = rhead.split("\r\n");
        const code = Number(rlines[0].split(" ")[1]);
        const rh = rlines.slice(1);
        let rbody: Uint8Array;
        if (method === "HEAD" || code === 204 || code === 304) rbody = new Uint8Array(0);
        else if (/chunked/i.test(header(rh, "transfer-encoding") ?? "")) {
          rbody = await res.chunked();
        } else if (header(rh, "content-length") !== undefined) {
          rbody = await res.exact(Number(header(rh, "content-length")));
        } else rbody = await res.rest();

        const query = new URL(path, "http://x").searchParams;
        if (method === "GET" && code === 200 && query.get("list-type") === "2") {
          rbody = inject(rbody, query, phantoms);
        }
        const keep = rh.filter((h) => !/^(transfer-encoding|content-length):/i.test(h));
        const lengthLine = method === "HEAD"
          ? rh.filter((h) => /^content-length:/i.test(h))
          : [`Content-Length: ${rbody.length}`];
        const out = [rlines[0], ...keep, ...lengthLine].join("\r\n") + "\r\n\r\n";
        await writeAll(client, concat(enc.encode(out), rbody));
      }
    } catch {
      // A peer went away: drop both sides.
    } finally {
      for (const c of [client, up]) {
        conns.delete(c);
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    }
  };

  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const t = serve(conn);
      tasks.add(t);
      t.finally(() => tasks.delete(t));
    }
  })().catch(() => {});

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    phantoms,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(tasks);
    },
  };
}
