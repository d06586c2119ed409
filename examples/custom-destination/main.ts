/**
 * `npm run example:custom-destination`: loads `weather_pipeline` into a destination written in this
 * example (`jsonl.ts`: JSON-lines files plus a state file per pipeline) instead of a built-in one,
 * then deletes the pipeline's working dir and shows the state restored from it.
 *
 * The files go to `PIPESTATE_JSONL_DIR`, by default `~/.pipestate/jsonl`.
 */
import { homedir } from "node:os"
import { join } from "node:path"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { demo } from "./demo.js"
import * as Jsonl from "./jsonl.js"

const directory = process.env.PIPESTATE_JSONL_DIR ?? join(homedir(), ".pipestate", "jsonl")

demo().pipe(
  Effect.provide(Layer.mergeAll(Jsonl.layer({ directory }), NodeContext.layer)),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
