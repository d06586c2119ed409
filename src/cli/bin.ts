#!/usr/bin/env node
/**
 * The `pipestate` executable: runs the CLI with Node's file system, path and terminal services.
 * Errors are printed by `run` itself (a message, no stack trace), so the runtime's own error report
 * is off; a failure exits with code 1.
 *
 * Imports are by module (`effect/Effect`, not `effect`) and the commands' implementations are
 * loaded only when one runs, so `pipestate --help` starts without loading the pipeline, the
 * destinations or their drivers. The installed command (`dist/bin/pipestate.js`, `npm run
 * build:cli`) is this file bundled by esbuild into a few chunks, split at those lazy imports: Node
 * then reads a handful of files instead of the ~600 modules of effect, @effect/cli and fast-check.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { run } from "./main.js"
import * as PlainConsole from "./PlainConsole.js"

// help and usage errors without color codes in a pipe, a file or with NO_COLOR
Console.consoleWith((console) =>
  Effect.withConsole(run(process.argv), PlainConsole.make(console, PlainConsole.colorsOf()))
).pipe(
  Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
