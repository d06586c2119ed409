/**
 * `npm run example:custom-fields`: serves a Pipedrive-like API locally and runs
 * `pipedrive_pipeline` twice into SQLite. The first run fetches the custom-field mapping into the
 * source state; the second reads it from there (0 field requests) and still renames every field.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Destination, Pipeline, Progress } from "../../src/index.js"
import { PipedriveApi } from "./api.js"
import { config, demo } from "./demo.js"

demo.pipe(
  Effect.provide(
    Layer.mergeAll(
      PipedriveApi.layer,
      FetchHttpClient.layer,
      Progress.console(),
      Pipeline.layerNode(config),
      Destination.sqlite()
    )
  ),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
