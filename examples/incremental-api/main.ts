/**
 * `npm run example:incremental-api [-- --destination sqlite|postgres] [--seed N]`: serves a paged
 * API of items locally and loads it incrementally (cursor on `updated_at`, merge on `id`) three
 * times, the API changing before the second run. PostgreSQL is read from `PIPESTATE_POSTGRES_URL`.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Destination, Pipeline, Progress } from "../../src/index.js"
import { IncrementalApi } from "./api.js"
import { config, demo } from "./demo.js"

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}

const destination = (name: string): Layer.Layer<Destination.Destination> => {
  switch (name) {
    case "sqlite":
      return Destination.sqlite()
    case "postgres":
      return Destination.postgres().pipe(Layer.orDie)
    default:
      return Layer.die(new Error(`unknown destination ${name}: use sqlite or postgres`))
  }
}

demo.pipe(
  Effect.provide(
    Layer.mergeAll(
      IncrementalApi.layer({ seed: Number(arg("seed", "7")) }),
      FetchHttpClient.layer,
      Progress.console(),
      Pipeline.layerNode(config),
      destination(arg("destination", "sqlite"))
    )
  ),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
