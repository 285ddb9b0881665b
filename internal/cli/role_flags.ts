/**
 * Flags that several roles share, defined once so that they are spelt, read
 * and defaulted alike: how to reach S3 (the controller, the node and
 * `s3csi mount` all talk to it), logging and help, and the CSI socket.
 *
 * Names follow mount-s3's (`--endpoint-url`, `--force-path-style`); the CSI
 * roles' spellings are accepted too (`--s3-endpoint-url` as an alias,
 * `--virtual-hosted-style` as the opposite of `--force-path-style`).
 * Without either addressing flag each role keeps its own default: the CSI
 * roles use path-style, `s3csi mount` only with `--endpoint-url`.
 *
 * @module
 */
import { bool, type FlagSpecs, type FlagValues, num, str, UsageError } from "./flags.ts";
import { type Kind, oneOf, uint, ValueError } from "./values.ts";
import type { Level } from "../log/mod.ts";
import { type MetricsAddress, parseMetricsAddress } from "../metrics/mod.ts";

// Loose on purpose: S3-compatible stores name regions freely (OpenStack's
// "RegionOne"); only characters that could change the endpoint's URL are refused.
const REGION: Kind<string> = {
  parse(raw) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) throw new ValueError(`"${raw}" is not a region name`);
    return raw;
  },
  format: (v) => v,
};

/**
 * How to reach S3. `aws-max-attempts` has no default here: the controller and
 * `s3csi mount` set their own; the node sets none, so its mounts keep theirs.
 */
export const S3_FLAGS = {
  region: {
    type: "string",
    kind: REGION,
    default: "us-east-1",
    env: "AWS_REGION",
    help: "Default S3 region",
  },
  "endpoint-url": {
    type: "string",
    aliases: ["s3-endpoint-url"],
    env: "AWS_ENDPOINT_URL",
    help: "S3 endpoint URL (AWS endpoints when unset)",
  },
  "force-path-style": {
    type: "boolean",
    help: "Path-style addressing (the default of the CSI roles, and of mounts with --endpoint-url)",
  },
  "virtual-hosted-style": {
    type: "boolean",
    help: "Virtual-hosted-style addressing (the opposite of --force-path-style)",
  },
  "ca-bundle": { type: "string", env: "AWS_CA_BUNDLE", help: "PEM file of extra trusted CAs" },
  "aws-max-attempts": {
    type: "string",
    kind: uint({ min: 1, max: 100 }),
    env: "AWS_MAX_ATTEMPTS",
    help: "Attempts per S3 request, retries included",
  },
  "s3-timeout": {
    type: "string",
    kind: uint({ min: 1, max: 3600 }),
    help:
      "Seconds an S3 answer may stay silent (its head gets twice as long) before the attempt fails and is retried (default 60)",
  },
} as const satisfies FlagSpecs;

/** The S3 settings of a role, in the field names of the S3 client's configuration. */
export interface S3Connection {
  region: string;
  endpointUrl?: string;
  forcePathStyle: boolean;
  caBundlePath?: string;
  maxAttempts?: number;
  idleTimeoutMs?: number;
}

/** Reads the S3_FLAGS; `pathStyle` is the addressing used when neither flag says. */
export function s3Connection(values: FlagValues, pathStyle: boolean): S3Connection {
  if (bool(values, "force-path-style") && bool(values, "virtual-hosted-style")) {
    throw new UsageError("--force-path-style and --virtual-hosted-style cannot be used together");
  }
  const conn: S3Connection = {
    region: str(values, "region")!,
    forcePathStyle: bool(values, "force-path-style") ||
      (pathStyle && !bool(values, "virtual-hosted-style")),
  };
  const endpointUrl = str(values, "endpoint-url");
  const caBundlePath = str(values, "ca-bundle");
  const maxAttempts = num(values, "aws-max-attempts");
  if (endpointUrl) conn.endpointUrl = endpointUrl;
  if (caBundlePath) conn.caBundlePath = caBundlePath;
  if (maxAttempts !== undefined) conn.maxAttempts = maxAttempts;
  const timeout = num(values, "s3-timeout");
  if (timeout !== undefined) conn.idleTimeoutMs = timeout * 1000;
  return conn;
}

/** Logging and help: every role has them, `s3csi mount` included. */
export const COMMON_FLAGS = {
  "log-level": {
    type: "string",
    kind: oneOf(["debug", "info", "warn", "error"]),
    default: "info",
    env: "S3CSI_LOG_LEVEL",
    help: "debug, info, warn or error",
  },
  debug: { type: "boolean", short: "d", help: "Debug logging (same as --log-level debug)" },
  help: { type: "boolean", short: "h", help: "Show this help" },
} as const satisfies FlagSpecs;

/** The log level that --log-level and --debug ask for. */
export function logLevel(values: FlagValues): Level {
  return bool(values, "debug") ? "debug" : (values["log-level"] as Level | undefined) ?? "info";
}

/** host:port of a listening endpoint. */
export const LISTEN_ADDRESS: Kind<string> = {
  parse(raw) {
    try {
      parseMetricsAddress(raw);
    } catch (err) {
      throw new ValueError((err as Error).message);
    }
    return raw;
  },
  format: (v) => v,
};

/** The Prometheus endpoint of the long-running roles (controller, node, reconciler). */
export const METRICS_FLAGS = {
  "metrics-address": {
    type: "string",
    kind: LISTEN_ADDRESS,
    env: "S3CSI_METRICS_ADDRESS",
    help: "Serve Prometheus metrics on host:port, e.g. 0.0.0.0:9810 (off when unset)",
  },
} as const satisfies FlagSpecs;

/** The metrics endpoint the flags ask for, if any. */
export function metricsAddress(values: FlagValues): MetricsAddress | undefined {
  const raw = str(values, "metrics-address");
  return raw ? parseMetricsAddress(raw) : undefined;
}

/** Flags of the CSI roles (controller, node): their socket, S3, logging. */
export const CSI_ROLE_FLAGS = {
  endpoint: {
    type: "string",
    default: "unix:///csi/csi.sock",
    env: "CSI_ENDPOINT",
    help: "CSI socket to listen on",
  },
  ...S3_FLAGS,
  ...METRICS_FLAGS,
  ...COMMON_FLAGS,
} as const satisfies FlagSpecs;
