/**
 * Checks of the S3 endpoint with the driver's own configuration (the
 * S3_FLAGS and the driver credentials from the environment), each one layer
 * up from the last, so the first failure names the layer at fault:
 *
 * - `s3.dns`: the endpoint's host name resolves (getaddrinfo, as the
 *   driver's connections do; IP literals need no lookup).
 * - `s3.tcp`: a TCP connection opens to the endpoint's port.
 * - `s3.tls`: for https, the certificate chains to a trusted CA (the system
 *   roots plus `--ca-bundle`, as the driver trusts), names the host, and is
 *   not about to expire (30 days: warning). Read with `node:tls`, which
 *   gives the peer certificate's names and dates.
 * - `s3.clock`: the local clock against the endpoint's HTTP `Date` header.
 *   SigV4 signatures carry the time and S3 refuses them beyond 15 minutes
 *   of skew (failed); over a minute is a warning.
 * - `s3.auth`: one signed request through the driver's SDK client
 *   construction (`SdkClients`): ListBuckets, or ListObjectsV2 of
 *   `--bucket`. A wrong key comes back as InvalidAccessKeyId or
 *   SignatureDoesNotMatch, named in the reason; only S3 error codes are
 *   reported, never the SDK's messages (they can echo request details).
 * - `s3.region`: with `--bucket`, the bucket's location against the
 *   configured region; without, only that requests signed for the region
 *   were accepted (a modest check, and the reason says so).
 *
 * Requires `--allow-net`, `--allow-read` (the CA bundle), `--allow-env`.
 *
 * @module
 */
import * as sdk from "@aws-sdk/client-s3";
import * as dns from "node:dns/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import type { S3Connection } from "../cli/role_flags.ts";
import { clientCredentials } from "../s3/credential_provider.ts";
import type { Credentials } from "../s3/object_client.ts";
import { networkCode } from "../s3/network_errors.ts";
import { SdkClients } from "../s3/sdk_clients.ts";
import { errorMessage } from "../errors/mod.ts";
import { type Check, failed, type Finding, ok, warning } from "./check.ts";

export interface S3Options {
  conn: S3Connection;
  /** The driver credentials (`credentialsFromEnv()`); the AWS default chain when absent. */
  credentials?: Credentials;
  /** A bucket the driver uses: auth and region are checked on it. */
  bucket?: string;
}

/** SigV4: S3 refuses requests signed more than 15 minutes off its clock. */
export const SKEW_FAIL_MS = 15 * 60_000;
export const SKEW_WARN_MS = 60_000;
/** A certificate expiring sooner than this is a warning. */
export const CERT_WARN_MS = 30 * 24 * 3600_000;

/** Where the endpoint is, from the driver's configuration. */
export interface Endpoint {
  url: URL;
  /** Host name or IP literal, without IPv6 brackets. */
  host: string;
  port: number;
  tls: boolean;
  isIp: boolean;
}

export function endpointOf(conn: S3Connection): Endpoint {
  const raw = conn.endpointUrl ?? `https://s3.${conn.region}.amazonaws.com`;
  const url = new URL(raw);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`Invalid endpoint URL "${raw}": not http or https`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
  return { url, host, port, tls: url.protocol === "https:", isIp };
}

/** The S3 error code and HTTP status of an SDK failure, or undefined for transport failures. */
function serviceError(err: unknown): { code: string; status: number; region?: string } | undefined {
  const e = err as {
    name?: string;
    Code?: string;
    Region?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode;
  if (status === undefined) return undefined;
  const code = (typeof e.Code === "string" ? e.Code : e.name) ?? "Unknown";
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 64);
  return {
    code: safe(code),
    status,
    ...(typeof e.Region === "string" ? { region: safe(e.Region) } : {}),
  };
}

const REGION_CODES = new Set([
  "AuthorizationHeaderMalformed",
  "InvalidRegion",
  "PermanentRedirect",
]);

export function s3Checks(o: S3Options): Check[] {
  const where = o.conn.endpointUrl ?? "the AWS endpoint";
  let ep: Endpoint | undefined;
  let caPem: string | undefined;
  const endpoint = (): Endpoint => ep ??= endpointOf(o.conn);
  const ca = (): string | undefined => {
    if (o.conn.caBundlePath && caPem === undefined) {
      caPem = Deno.readTextFileSync(o.conn.caBundlePath);
    }
    return caPem;
  };
  // What s3.auth learnt, for s3.region.
  let authRegion: { refused: boolean; expected?: string } | undefined;

  return [
    {
      id: "s3.dns",
      group: "s3",
      title: "The endpoint's name resolves",
      run: async () => {
        let e: Endpoint;
        try {
          e = endpoint();
        } catch (err) {
          return failed(errorMessage(err), "Fix --endpoint-url (AWS_ENDPOINT_URL)");
        }
        if (e.isIp) return ok(`${e.host} is an IP address: no lookup needed`);
        try {
          const addrs = await dns.lookup(e.host, { all: true });
          const list = addrs.map((a) => a.address);
          return ok(`${e.host} resolves to ${list.join(", ")}`, { addresses: list });
        } catch (err) {
          const code = (err as { code?: string }).code ?? errorMessage(err);
          return failed(
            `${e.host} does not resolve (${code})`,
            "Check the endpoint's host name and this node's DNS (/etc/resolv.conf, CoreDNS)",
          );
        }
      },
    },
    {
      id: "s3.tcp",
      group: "s3",
      title: "A TCP connection opens",
      needs: ["s3.dns"],
      run: ({ signal }) => tcp(endpoint(), signal),
    },
    {
      id: "s3.tls",
      group: "s3",
      title: "TLS with the configured CA",
      needs: ["s3.tcp"],
      run: ({ signal }) => {
        const e = endpoint();
        if (!e.tls) return Promise.resolve(ok("Plain HTTP endpoint: no TLS to check"));
        let pem: string | undefined;
        try {
          pem = ca();
        } catch (err) {
          return Promise.resolve(failed(
            `Cannot read the CA bundle "${o.conn.caBundlePath}": ${errorMessage(err)}`,
            "Fix --ca-bundle (AWS_CA_BUNDLE)",
          ));
        }
        return tlsCheck(e, pem, o.conn.caBundlePath, signal);
      },
    },
    {
      id: "s3.clock",
      group: "s3",
      title: "The clock agrees with the endpoint's",
      needs: ["s3.tls"],
      run: ({ signal }) => clock(endpoint(), ca(), signal),
    },
    {
      id: "s3.auth",
      group: "s3",
      title: "SigV4 authentication with the driver credentials",
      needs: ["s3.tls"],
      run: async ({ signal }) => {
        const r = await auth(o, where, signal);
        authRegion = r.region;
        return r.finding;
      },
    },
    {
      id: "s3.region",
      group: "s3",
      title: "The region",
      needs: ["s3.auth"],
      run: ({ signal }) => region(o, authRegion, signal),
    },
  ];
}

async function tcp(e: Endpoint, signal: AbortSignal): Promise<Finding> {
  const target = `${e.isIp && e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`;
  try {
    const conn = await Deno.connect(
      { hostname: e.host, port: e.port, signal } as Deno.ConnectOptions,
    );
    const addr = conn.remoteAddr as Deno.NetAddr;
    conn.close();
    return ok(`Connected to ${target} (${addr.hostname})`);
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused) {
      return failed(
        `Connection refused by ${target}`,
        "Check the endpoint's port, and that S3 listens there (firewall, Service, load balancer)",
      );
    }
    return failed(
      `Cannot connect to ${target}: ${errorMessage(err)}`,
      "Check routes and firewalls between this node and the endpoint",
    );
  }
}

/** What an unverifiable chain reports (Node's OpenSSL codes). */
const UNKNOWN_CA = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

function tlsCheck(
  e: Endpoint,
  caPem: string | undefined,
  caPath: string | undefined,
  signal: AbortSignal,
): Promise<Finding> {
  return new Promise<Finding>((resolve) => {
    const socket = tls.connect({
      host: e.host,
      port: e.port,
      ...(e.isIp ? {} : { servername: e.host }),
      // The driver's trust: the system roots plus the bundle (sdk_clients.ts).
      ...(caPem ? { ca: [...tls.rootCertificates, caPem] } : {}),
      // Verified below, so a refused certificate can still be described.
      rejectUnauthorized: false,
    });
    const done = (f: Finding) => {
      socket.destroy();
      signal.removeEventListener("abort", onAbort);
      resolve(f);
    };
    const onAbort = () =>
      done(failed("TLS handshake did not finish", "Check that the port speaks TLS"));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (err) => {
      done(failed(
        `TLS handshake failed: ${(err as { code?: string }).code ?? errorMessage(err)}`,
        "Check that the endpoint speaks TLS on this port (or use http://)",
      ));
    });
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      const names = cert.subjectaltname?.replace(/IP Address:|DNS:/g, "") ?? cert.subject?.CN ?? "";
      const detail = {
        names,
        validFrom: cert.valid_from,
        validTo: cert.valid_to,
        issuer: cert.issuer?.CN ?? "",
      };
      const chainError = socket.authorized ? undefined : String(socket.authorizationError ?? "");
      if (chainError && UNKNOWN_CA.has(chainError)) {
        return done(failed(
          `Certificate for ${names} is signed by an unknown CA (issuer "${detail.issuer}")`,
          caPath
            ? `The CA in "${caPath}" does not sign it: give the endpoint's CA with --ca-bundle`
            : "Give the endpoint's CA with --ca-bundle (AWS_CA_BUNDLE)",
          { ...detail, error: chainError },
        ));
      }
      if (chainError === "CERT_HAS_EXPIRED" || chainError === "CERT_NOT_YET_VALID") {
        const what = chainError === "CERT_HAS_EXPIRED"
          ? `expired on ${cert.valid_to}`
          : `is not valid before ${cert.valid_from}`;
        return done(failed(
          `Certificate for ${names} ${what}`,
          "Renew the certificate (or check this node's clock)",
          detail,
        ));
      }
      if (chainError) {
        return done(
          failed(`Certificate refused: ${chainError}`, "Check the endpoint's certificate", detail),
        );
      }
      const identity = tls.checkServerIdentity(e.host, cert);
      if (identity) {
        return done(failed(
          `Certificate names ${names}, not ${e.host}`,
          "Use an endpoint URL with a name the certificate has, or reissue it",
          detail,
        ));
      }
      const left = Date.parse(cert.valid_to) - Date.now();
      if (left < CERT_WARN_MS) {
        return done(warning(
          `Certificate for ${names} expires in ${
            Math.max(0, Math.floor(left / 86400_000))
          } days (${cert.valid_to})`,
          "Renew the certificate before it expires",
          detail,
        ));
      }
      done(
        ok(
          `Certificate for ${names}, issued by "${detail.issuer}", valid until ${cert.valid_to}`,
          detail,
        ),
      );
    });
  });
}

/** The endpoint's `Date` header against this clock (half the round trip accounted for). */
function clock(e: Endpoint, caPem: string | undefined, signal: AbortSignal): Promise<Finding> {
  return new Promise<Finding>((resolve) => {
    const sent = Date.now();
    const mod = e.tls ? https : http;
    const req = mod.request(e.url, {
      method: "GET",
      signal,
      agent: false,
      ...(e.tls && caPem ? { ca: [...tls.rootCertificates, caPem] } : {}),
    }, (res) => {
      const received = Date.now();
      res.resume();
      const header = res.headers.date;
      const server = header ? Date.parse(header) : NaN;
      if (Number.isNaN(server)) {
        return resolve(warning(
          "The endpoint sent no Date header: cannot compare clocks",
          "Check the clock with NTP (chronyc tracking, timedatectl)",
        ));
      }
      // Date has one-second resolution: take the middle of that second.
      const skew = server + 500 - (sent + received) / 2;
      const detail = { skewMs: Math.round(skew), endpointDate: header };
      const amount = formatSkew(skew);
      const action = "Synchronise this node's clock (NTP: chronyd, systemd-timesyncd)";
      if (Math.abs(skew) > SKEW_FAIL_MS) {
        return resolve(
          failed(`Clock is ${amount} off the endpoint's: SigV4 fails past 15 min`, action, detail),
        );
      }
      if (Math.abs(skew) > SKEW_WARN_MS) {
        return resolve(warning(`Clock is ${amount} off the endpoint's`, action, detail));
      }
      resolve(ok(`Clock within ${amount} of the endpoint's`, detail));
    });
    req.once("error", (err) => {
      resolve(failed(
        `Cannot read the endpoint's Date: ${networkCode(err) ?? errorMessage(err)}`,
        "Check that the endpoint answers HTTP",
      ));
    });
    req.end();
  });
}

function formatSkew(ms: number): string {
  const s = Math.abs(ms) / 1000;
  const sign = ms < 0 ? "behind" : "ahead";
  if (s < 2) return "1 s";
  const text = s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
  return `${text} (endpoint ${sign})`;
}

interface AuthOutcome {
  finding: Finding;
  region?: { refused: boolean; expected?: string };
}

async function auth(
  o: S3Options,
  where: string,
  signal: AbortSignal,
): Promise<AuthOutcome> {
  const config = {
    ...o.conn,
    maxAttempts: 1,
    ...(o.credentials ? { credentials: o.credentials } : {}),
  };
  const clients = new SdkClients(config, clientCredentials(config).sdk);
  const source = o.credentials
    ? `access key ${o.credentials.accessKeyId.slice(0, 4)}…`
    : "the AWS default credential chain";
  const request = o.bucket ? `ListObjectsV2 of "${o.bucket}"` : "ListBuckets";
  const keyAction = "Check the driver's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; " +
    "Secret s3csi-credentials)";
  try {
    const command = o.bucket
      ? new sdk.ListObjectsV2Command({ Bucket: o.bucket, MaxKeys: 1 })
      : new sdk.ListBucketsCommand({});
    await clients.for(undefined).send(command as sdk.ListBucketsCommand, { abortSignal: signal });
    return { finding: ok(`${request} signed with ${source} accepted by ${where}`) };
  } catch (err) {
    const svc = serviceError(err);
    if (!svc) {
      const name = (err as { name?: string }).name ?? "";
      if (/CredentialsProviderError/.test(name)) {
        return {
          finding: warning(
            "No driver credentials: neither in the environment nor from the AWS default chain",
            "Only volumes with their own secrets will mount; set AWS_ACCESS_KEY_ID and " +
              "AWS_SECRET_ACCESS_KEY (Secret s3csi-credentials) for the others",
          ),
        };
      }
      return {
        finding: failed(
          `${request} failed: ${networkCode(err) ?? errorMessage(err)}`,
          "See s3.tcp and s3.tls",
        ),
      };
    }
    const said = `${svc.code}, HTTP ${svc.status}`;
    if (REGION_CODES.has(svc.code)) {
      const expected = svc.region ? ` (the endpoint expects "${svc.region}")` : "";
      return {
        region: { refused: true, ...(svc.region ? { expected: svc.region } : {}) },
        finding: failed(
          `${where} refused a request signed for region "${o.conn.region}"${expected} (${said})`,
          "Set --region (AWS_REGION) to the endpoint's region",
        ),
      };
    }
    switch (svc.code) {
      case "InvalidAccessKeyId":
        return {
          finding: failed(`S3 does not know the access key of ${source} (${said})`, keyAction),
        };
      case "SignatureDoesNotMatch":
        return {
          finding: failed(`The secret key does not match ${source} (${said})`, keyAction),
        };
      case "ExpiredToken":
      case "InvalidToken":
      case "TokenRefreshRequired":
        return {
          finding: failed(
            `The session token of ${source} is refused (${said})`,
            "Renew the credentials",
          ),
        };
      case "RequestTimeTooSkewed":
        return { finding: failed(`S3 refused the request's time (${said})`, "See s3.clock") };
      case "NoSuchBucket":
        return {
          finding: failed(`Bucket "${o.bucket}" does not exist (${said})`, "Check --bucket"),
        };
      case "AccessDenied":
        return o.bucket
          ? {
            finding: failed(
              `The signature is valid but ${request} is denied (${said})`,
              "Allow s3:ListBucket on the bucket to the driver's credentials",
            ),
          }
          : {
            finding: warning(
              `The signature is valid but ${request} is denied (${said})`,
              "Give --bucket to check a bucket the driver's credentials may list",
            ),
          };
    }
    return { finding: failed(`${request} failed (${said})`, "Check the endpoint's logs") };
  } finally {
    clients.close();
  }
}

async function region(
  o: S3Options,
  learnt: { refused: boolean; expected?: string } | undefined,
  signal: AbortSignal,
): Promise<Finding> {
  const configured = o.conn.region;
  if (learnt?.refused) {
    return failed(`Region "${configured}" refused`, "See s3.auth");
  }
  if (!o.bucket) {
    return ok(
      `Requests signed for "${configured}" are accepted (give --bucket to check a bucket's location)`,
    );
  }
  const config = {
    ...o.conn,
    maxAttempts: 1,
    ...(o.credentials ? { credentials: o.credentials } : {}),
  };
  const clients = new SdkClients(config, clientCredentials(config).sdk);
  try {
    const out = await clients.for(undefined).send(
      new sdk.GetBucketLocationCommand({ Bucket: o.bucket }),
      { abortSignal: signal },
    );
    // No constraint is us-east-1; "EU" is the old name of eu-west-1.
    const raw = out.LocationConstraint as string | undefined;
    const location = !raw ? "us-east-1" : raw === "EU" ? "eu-west-1" : raw;
    if (location !== configured) {
      return failed(
        `Bucket "${o.bucket}" is in "${location}", the driver signs for "${configured}"`,
        `Set --region (AWS_REGION) to "${location}", or the volume's region mount option`,
        { location },
      );
    }
    return ok(`Bucket "${o.bucket}" is in "${location}", the configured region`, { location });
  } catch (err) {
    const svc = serviceError(err);
    if (svc && (svc.code === "NotImplemented" || svc.code === "AccessDenied")) {
      return warning(
        `The endpoint does not tell the bucket's location (${svc.code}, HTTP ${svc.status})`,
        "Check the region with your S3 provider",
      );
    }
    return failed(
      `GetBucketLocation failed: ${
        svc ? `${svc.code}, HTTP ${svc.status}` : networkCode(err) ?? errorMessage(err)
      }`,
      "Check --bucket and the endpoint",
    );
  } finally {
    clients.close();
  }
}
