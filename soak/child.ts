/**
 * One run of the incremental-api example pipeline against PostgreSQL, in a process of its own, for
 * the SIGKILL faults of the soak:
 *
 *   node --import tsx soak/child.ts --url=... --base-url=... --dataset=... --dir=... --name=... \
 *     [--batch-size=N] [--keep=N] [--start-file=<path>]
 *
 * The API runs in the soak's process (`--base-url`); this process only loads. Prints, one line
 * each, unbuffered (a SIGKILL loses nothing already printed):
 * - `WAITING` with `--start-file`: the modules are loaded, waiting for that file to exist;
 * - `PHASE <restore|extract|commit|done> <ms since start>` as the run goes;
 * - `OUTCOME <COMMITTED|NOTHING|ERROR> <json>` at the end (exit code 0, or 1 on an error).
 */
import * as NodeFs from "node:fs"
import { performance } from "node:perf_hooks"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import { incrementalSource } from "../examples/incremental-api/pipeline.js"
import * as Postgres from "../src/destination/postgres.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Progress from "../src/pipeline/Progress.js"

const say = (line: string): void => {
  NodeFs.writeSync(1, `${line}\n`)
}

const args = new Map(
  process.argv
    .slice(2)
    .filter((arg) => arg.startsWith("--"))
    .map((arg) => {
      const at = arg.indexOf("=")
      return at < 0 ? [arg.slice(2), "true"] : [arg.slice(2, at), arg.slice(at + 1)]
    })
)

const required = (name: string): string => {
  const value = args.get(name)
  if (value === undefined || value === "") {
    say(`OUTCOME ERROR ${JSON.stringify({ tag: "Usage", message: `--${name} is required` })}`)
    process.exit(2)
  }
  return value
}

const optionalNumber = (name: string): number | undefined => {
  const value = args.get(name)
  return value === undefined ? undefined : Number(value)
}

const progress: Progress.ProgressShape = {
  ...Progress.silent,
  phase: (_name, phase) => Effect.sync(() => say(`PHASE ${phase} ${Math.round(performance.now())}`))
}

const batchSize = optionalNumber("batch-size")
const keepStateVersions = optionalNumber("keep")

const program = Pipeline.run(incrementalSource(required("base-url"))).pipe(
  Effect.provide(
    Layer.mergeAll(
      Pipeline.layerNode({
        name: required("name"),
        dataset: required("dataset"),
        pipelinesDir: required("dir"),
        ...(batchSize === undefined ? {} : { batchSize }),
        ...(keepStateVersions === undefined ? {} : { keepStateVersions })
      }),
      Postgres.layer({ url: Redacted.make(required("url")) }),
      FetchHttpClient.layer,
      Layer.succeed(Progress.Progress, progress)
    )
  )
)

// started ahead of time: load the modules, then wait for the start file
const startFile = args.get("start-file")
if (startFile !== undefined) {
  say("WAITING")
  while (!NodeFs.existsSync(startFile)) await new Promise((resolve) => setTimeout(resolve, 2))
}
say(`PHASE start ${Math.round(performance.now())}`)

const exit = await Effect.runPromiseExit(program)
if (Exit.isSuccess(exit)) {
  const summary = exit.value
  say(
    `OUTCOME ${summary.loadId === null ? "NOTHING" : "COMMITTED"} ${JSON.stringify({
      loadId: summary.loadId,
      tables: summary.tables,
      origin: summary.origin,
      versionBefore: summary.stateVersionBefore,
      versionAfter: summary.stateVersionAfter
    })}`
  )
  process.exit(0)
}
const error: unknown = Option.getOrUndefined(Cause.failureOption(exit.cause))
const tag =
  typeof error === "object" && error !== null && "_tag" in error ? String((error as { _tag: unknown })._tag) : "Defect"
say(
  `OUTCOME ERROR ${JSON.stringify({ tag, message: error instanceof Error ? error.message : Cause.pretty(exit.cause) })}`
)
process.exit(1)
