/**
 * `npm run example:user-comments [-- --destination sqlite|postgres] [--dataset name]`: runs
 * `user_comments_pipeline` twice. The first run loads the user's comments; the second finds the
 * newest comment id in the destination and loads nothing. PostgreSQL is read from
 * `PIPESTATE_POSTGRES_URL`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Destination, Pipeline } from "../../src/index.js"
import { config, demo } from "./demo.js"

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? process.argv[at + 1] : undefined
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

demo().pipe(
  Effect.provide(
    Layer.mergeAll(
      Pipeline.layerNode({ ...config, dataset: arg("dataset") ?? config.dataset }),
      destination(arg("destination") ?? "sqlite")
    )
  ),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
