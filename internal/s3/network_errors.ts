/**
 * Which failures mean the network broke, whichever transport raised them:
 * Node-style `err.code`s (from `node:http`, and from `FetchHttpHandler`'s
 * `TransportError`, which gives Deno's `fetch` failures the same codes),
 * Deno's built-in error names, and a body cut short (`BodyLengthError`).
 *
 * `toS3Error()` asks `networkCode()` once it has ruled out an S3 answer, and
 * reports a match as NetworkError.
 *
 * @module
 */

/** Transport error codes (Node `err.code`) that mean the network, DNS or TLS failed. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NONAME",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "EPROTO",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_BLOCKED_PORT",
  "ENETWORK",
]);

/** Error names (Node SDK, Deno built-in errors, DOM) that mean a transport failure. */
const NETWORK_NAMES = new Set([
  "TimeoutError",
  "ConnectionRefused",
  "ConnectionReset",
  "ConnectionAborted",
  "NotConnected",
  "AddrNotAvailable",
  "BrokenPipe",
  "TimedOut",
  "UnexpectedEof",
  "NetworkUnreachable",
  "HostUnreachable",
  "BodyLengthError",
]);

/** The transport failure code found on `err` or its causes, if it is one. */
export function networkCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  const name = typeof e.name === "string" ? e.name : "";
  if (code && (NETWORK_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("CERT_"))) {
    return code;
  }
  if (NETWORK_NAMES.has(name)) return code ?? name;
  // Deno reports TLS and malformed-stream failures as InvalidData.
  if (name === "InvalidData") return "TLS or protocol error";
  return networkCode(e.cause, depth + 1);
}
