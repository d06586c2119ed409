/**
 * The CLI run in this process through its `run(argv)`: what it printed on stdout and stderr (its
 * Console captured), and whether it failed (its exit code would be 1).
 */
import { NodeContext } from "@effect/platform-node"
import { type Console, Effect, Exit } from "effect"
import { run as runCli } from "../../src/cli/main.js"

/** runs the CLI in this process; what it printed, and whether it failed */
export const cli = (...args: ReadonlyArray<string>) =>
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
      Effect.provide(NodeContext.layer),
      Effect.exit
    )
    return { ok: Exit.isSuccess(exit), out: out.join("\n"), err: err.join("\n") }
  })
