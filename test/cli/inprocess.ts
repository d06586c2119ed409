/**
 * The CLI run in this process through its `run(argv)`: what it printed on stdout and stderr (its
 * Console captured), and whether it failed (its exit code would be 1). The environment the CLI
 * reads (`PIPESTATE_*`) is a ConfigProvider built from the given variables over a scrubbed copy of
 * this process's, so a developer's shell cannot steer it; the test process's env is never changed.
 */
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, type Console, Effect, Exit } from "effect"
import { run as runCli } from "../../src/cli/main.js"
import { type CliResult, SCRUBBED } from "./fixtures.js"

/** the environment a CLI run sees: this process's without the PIPESTATE_* variables, plus `env` */
const providerOf = (env: Record<string, string>) => {
  const map = new Map<string, string>()
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !SCRUBBED.includes(key)) map.set(key, value)
  }
  for (const [key, value] of Object.entries(env)) map.set(key, value)
  return ConfigProvider.fromMap(map)
}

/** runs the CLI in this process with `env` as its environment; what it printed, and whether it failed */
export const cliWith = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const base = yield* Effect.consoleWith((c) => Effect.succeed(c))
    const captured: Console.Console = {
      ...base,
      log: (...parts) => Effect.sync(() => void out.push(parts.join(" "))),
      error: (...parts) => Effect.sync(() => void err.push(parts.join(" ")))
    }
    const exit = yield* runCli(["node", "pipestate", ...args]).pipe(
      Effect.withConsole(captured),
      Effect.withConfigProvider(providerOf(env)),
      Effect.provide(NodeContext.layer),
      Effect.exit
    )
    return { ok: Exit.isSuccess(exit), out: out.join("\n"), err: err.join("\n") }
  })

/** runs the CLI in this process; what it printed, and whether it failed */
export const cli = (...args: ReadonlyArray<string>) => cliWith(args)

/**
 * The in-process run in the shape of a child-process run (tests/cli/fixtures.ts `cli`): exit status
 * 0 or 1, and stdout and stderr as the lines a process would have printed.
 */
export const cliRun = (args: ReadonlyArray<string>, options: { readonly env?: Record<string, string> } = {}) =>
  Effect.runPromise(
    Effect.map(
      cliWith(args, options.env),
      (result): CliResult => ({
        status: result.ok ? 0 : 1,
        stdout: result.out === "" ? "" : `${result.out}\n`,
        stderr: result.err === "" ? "" : `${result.err}\n`
      })
    )
  )
