#!/usr/bin/env node
/**
 * The `pipestate` executable: runs the CLI with Node's platform services. Errors are printed by
 * `run` itself (a message, no stack trace), so the runtime's own error report is off; a failure
 * exits with code 1.
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./main.js"

run(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true }))
