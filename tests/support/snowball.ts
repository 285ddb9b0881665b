/**
 * Fills a MinIO bucket with many empty objects in one request: MinIO's
 * "snowball" upload extracts a tar sent with
 * `X-Amz-Meta-Snowball-Auto-Extract: true` into one object per entry, on
 * the server. One PutObject per key would take minutes for 200,000.
 *
 * @module
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { type MinioServer, sdkClient } from "./minio.ts";

const enc = new TextEncoder();

/** A ustar archive of empty regular files named `names`. */
export function emptyFilesTar(names: string[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(names.length * 512 + 1024);
  names.forEach((name, i) => {
    if (enc.encode(name).length > 100) throw new RangeError(`tar name too long: ${name}`);
    const h = out.subarray(i * 512, (i + 1) * 512);
    const put = (at: number, s: string) => h.set(enc.encode(s), at);
    put(0, name);
    put(100, "0000644\0"); // mode
    put(108, "0000000\0"); // uid
    put(116, "0000000\0"); // gid
    put(124, "00000000000\0"); // size
    put(136, "00000000000\0"); // mtime
    put(148, "        "); // the checksum counts its own field as spaces
    put(156, "0"); // a regular file
    put(257, "ustar\0");
    put(263, "00");
    const sum = h.reduce((a, b) => a + b, 0);
    put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  });
  return out;
}

/** Creates an empty object for each of `keys` in `bucket`, in one request. */
export async function fillBucket(m: MinioServer, bucket: string, keys: string[]): Promise<void> {
  const client = await sdkClient(m);
  try {
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `fill-${crypto.randomUUID()}.tar`,
        Body: emptyFilesTar(keys),
        Metadata: { "snowball-auto-extract": "true" },
      }),
    );
  } finally {
    client.destroy();
  }
}
