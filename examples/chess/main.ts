/**
 * `npm run demo [-- --destination sqlite|postgres]`: serves the chess API locally, runs
 * `chess_pipeline` twice and prints what each run loaded and the state version. The second run
 * loads nothing new: the archives are remembered in the resource state.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Destination, Pipeline, Progress } from "../../src/index.js"
import { chess } from "./pipeline.js"
import { ChessApi } from "./server.js"

const destinationArg = (): string => {
  const at = process.argv.indexOf("--destination")
  return at >= 0 ? (process.argv[at + 1] ?? "sqlite") : "sqlite"
}

const destination = (name: string): Layer.Layer<Destination.Destination> => {
  switch (name) {
    case "sqlite":
      return Destination.sqlite()
    case "postgres":
      // reads PIPESTATE_POSTGRES_URL
      return Destination.postgres().pipe(Layer.orDie)
    default:
      return Layer.die(new Error(`unknown destination ${name}: use sqlite or postgres`))
  }
}

const program = Effect.gen(function* () {
  const api = yield* ChessApi
  const source = chess(api.baseUrl, api.players)
  for (const attempt of [1, 2]) {
    const summary = yield* Pipeline.run(source)
    const rows = Object.entries(summary.tables)
      .map(([table, count]) => `${table}: ${count} rows`)
      .join(", ")
    yield* Console.log(
      `run ${attempt}: ${rows} | state version ${summary.stateVersionAfter} (from ${summary.origin}, first run: ${summary.firstRun})`
    )
  }
  const pipeline = yield* Pipeline.Pipeline
  yield* Console.log(`pipeline ${pipeline.config.name}: working dir ${pipeline.workingDir.dir}`)
})

program.pipe(
  Effect.provide(
    Layer.mergeAll(
      ChessApi.layer(),
      FetchHttpClient.layer,
      Progress.console(),
      Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" }),
      destination(destinationArg())
    )
  ),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
