/**
 * `s3csi doctor`: preflight checks. Not implemented: its UnimplementedError makes
 * `main.ts` exit 3.
 */
import { UnimplementedError } from "../../internal/errors/mod.ts";

export const summary = "Doctor (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UnimplementedError("not implemented yet"));
}
