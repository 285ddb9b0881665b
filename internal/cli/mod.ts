/**
 * The command line of every role: flag parsing with one usage error
 * (`flags.ts`), value kinds that name the flag at fault (`values.ts`), and
 * the flags all roles share, defined once (`role_flags.ts`: the S3
 * connection, logging, the CSI socket). Each `cmd/<role>/mod.ts` declares
 * its own flags as data on top of these.
 *
 * @module
 */
export * from "./flags.ts";
export * from "./values.ts";
export * from "./role_flags.ts";
