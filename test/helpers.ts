import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Effect, Layer, Option } from "effect"
import { type DatasetTarget, Destination, type DestinationShape } from "../src/destination/Destination.js"

/** A fresh temporary directory, removed when the scope closes. */
export const tempDir = (prefix = "pipestate-test-") =>
  Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix))),
    (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  )

/** A fresh temporary directory for tests that manage it themselves. */
export const makeTempDir = (prefix = "pipestate-test-"): string =>
  NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix))

/** Wraps the destination in the context so a test can inject failures into it. */
export const wrapDestination =
  (f: (destination: DestinationShape) => DestinationShape) =>
  <E, R>(inner: Layer.Layer<Destination, E, R>): Layer.Layer<Destination, E, R> =>
    Layer.effect(Destination, Effect.map(Destination, f)).pipe(Layer.provide(inner))

/** the destination's newest state row of a pipeline, with its blob */
export const newestStored = (target: DatasetTarget, pipelineName: string) =>
  Effect.gen(function* () {
    const d = yield* Destination
    const newest = (yield* d.stateRows(target, pipelineName, 1))[0]
    return newest === undefined ? Option.none() : yield* d.readState(target, pipelineName, newest.loadId)
  })
