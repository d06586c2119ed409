/**
 * A `Console` without terminal colors where they do not belong: @effect/cli renders help and usage
 * errors with ANSI escape codes, which a pipe (`pipestate --help | less`, a CI log, a file) shows as
 * `^[[0;1m` noise. Text for standard output loses them when standard output is not a terminal,
 * text for standard error when standard error is not one, and both when `NO_COLOR` is set
 * (no-color.org).
 *
 * @example
 * ```ts
 * Console.consoleWith((console) => Effect.withConsole(program, PlainConsole.make(console, PlainConsole.colorsOf())))
 * ```
 *
 * @since 0.2.0
 */
import { stripVTControlCharacters } from "node:util"
import type * as Console from "effect/Console"
import type * as Effect from "effect/Effect"

const plain = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/**
 * Whether each stream keeps its colors: a terminal, and `NO_COLOR` unset or empty.
 *
 * @since 0.2.0
 */
export const colorsOf = (
  env: NodeJS.ProcessEnv = process.env
): { readonly stdout: boolean; readonly stderr: boolean } => {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== ""
  return { stdout: !noColor && process.stdout.isTTY === true, stderr: !noColor && process.stderr.isTTY === true }
}

/**
 * `base` with the escape codes removed from the text of each stream whose `colors` flag is false.
 *
 * @since 0.2.0
 */
export const make = (
  base: Console.Console,
  colors: { readonly stdout: boolean; readonly stderr: boolean }
): Console.Console => {
  if (colors.stdout && colors.stderr) return base
  const out = (f: (...args: ReadonlyArray<unknown>) => Effect.Effect<void>) =>
    colors.stdout ? f : (...args: ReadonlyArray<unknown>) => f(...plain(args))
  const err = (f: (...args: ReadonlyArray<unknown>) => Effect.Effect<void>) =>
    colors.stderr ? f : (...args: ReadonlyArray<unknown>) => f(...plain(args))
  const unsafeOut = (f: (...args: ReadonlyArray<unknown>) => void) =>
    colors.stdout ? f : (...args: ReadonlyArray<unknown>) => f(...plain(args))
  const unsafeErr = (f: (...args: ReadonlyArray<unknown>) => void) =>
    colors.stderr ? f : (...args: ReadonlyArray<unknown>) => f(...plain(args))
  const u = base.unsafe
  return {
    ...base,
    log: out((...args) => base.log(...args)),
    info: out((...args) => base.info(...args)),
    debug: out((...args) => base.debug(...args)),
    dirxml: out((...args) => base.dirxml(...args)),
    error: err((...args) => base.error(...args)),
    warn: err((...args) => base.warn(...args)),
    trace: err((...args) => base.trace(...args)),
    unsafe: {
      ...u,
      log: unsafeOut((...args) => u.log(...args)),
      info: unsafeOut((...args) => u.info(...args)),
      debug: unsafeOut((...args) => u.debug(...args)),
      dirxml: unsafeOut((...args) => u.dirxml(...args)),
      error: unsafeErr((...args) => u.error(...args)),
      warn: unsafeErr((...args) => u.warn(...args)),
      trace: unsafeErr((...args) => u.trace(...args))
    }
  }
}
