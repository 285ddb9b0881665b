/** `s3csi doctor`: wiring only (see internal/). */
import { UnimplementedError } from "../../internal/errors/mod.ts";

export const summary = "Doctor (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UnimplementedError("not implemented yet"));
}
