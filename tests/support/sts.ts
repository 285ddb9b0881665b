/**
 * Temporary credentials from a test MinIO's STS endpoint (AssumeRole), so a
 * tier can prove that a session token travels through the driver.
 *
 * The request is one form POST signed with Signature Version 4 (service
 * `sts`) using the server's root credentials. It is signed here with
 * WebCrypto rather than through an SDK client: the project depends on no STS
 * client, and the signature is a few HMACs.
 *
 * @module
 */
import type { Credentials } from "../../internal/s3/object_client.ts";
import type { MinioServer } from "./minio.ts";

const enc = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

async function hmac(key: BufferSource, text: string): Promise<ArrayBuffer> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return await crypto.subtle.sign("HMAC", k, enc.encode(text));
}

function xmlField(xml: string, name: string): string {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new Error(`AssumeRole answer has no <${name}>: ${xml.slice(0, 500)}`);
  return m[1];
}

/** Asks `m` for temporary credentials (with a session token) of its root user. */
export async function assumeRole(m: MinioServer, durationSeconds = 3600): Promise<Credentials> {
  const url = new URL(m.endpoint);
  const body = `Action=AssumeRole&DurationSeconds=${durationSeconds}&Version=2011-06-15`;
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${m.region}/sts/aws4_request`;
  const payloadHash = await sha256(body);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    host: url.host,
    "x-amz-content-sha256": payloadHash,
    "x-amz-date": amzDate,
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(";");
  const canonical = [
    "POST",
    "/",
    "",
    ...names.map((n) => `${n}:${headers[n]}`),
    "",
    signedHeaders,
    payloadHash,
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256(canonical)].join("\n");
  let key: BufferSource = enc.encode(`AWS4${m.secretAccessKey}`);
  for (const part of [day, m.region, "sts", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  const { host: _host, ...sent } = headers;
  const client = m.caCertPath
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(m.caCertPath)] })
    : undefined;
  try {
    const res = await fetch(`${m.endpoint}/`, {
      method: "POST",
      headers: {
        ...sent,
        authorization:
          `AWS4-HMAC-SHA256 Credential=${m.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
      },
      body,
      ...(client ? { client } : {}),
    });
    const xml = await res.text();
    if (!res.ok) throw new Error(`AssumeRole answered ${res.status}: ${xml.slice(0, 500)}`);
    return {
      accessKeyId: xmlField(xml, "AccessKeyId"),
      secretAccessKey: xmlField(xml, "SecretAccessKey"),
      sessionToken: xmlField(xml, "SessionToken"),
    };
  } finally {
    client?.close();
  }
}
