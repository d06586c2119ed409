/**
 * `npm run demo [-- --destination sqlite|postgres]`: serves the chess API locally, runs
 * `chess_pipeline` twice and prints what each run loaded and the state version. The second run
 * loads nothing new: the archives are remembered in the resource state.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Destination, Pipeline, Progress } from "../../src/index.js"
import { pipelineConfig, runTwice } from "./demo.js"
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

runTwice.pipe(
  Effect.provide(
    Layer.mergeAll(
      ChessApi.layer(),
      FetchHttpClient.layer,
      Progress.console(),
      Pipeline.layerNode(pipelineConfig),
      destination(destinationArg())
    )
  ),
  NodeRuntime.runMain
)
