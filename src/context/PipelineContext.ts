/**
 * `PipelineContext`: what a resource may know about the pipeline running it, including read access
 * to the data already loaded (`dataset`), as dlt's `dlt.current.pipeline()`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PipelineContext } from "effect-pipestate"
 *
 * const lastId = (userId: string) =>
 *   Effect.gen(function* () {
 *     const pipeline = yield* PipelineContext.PipelineContext
 *     if (pipeline.firstRun) return 0
 *     const dataset = yield* pipeline.dataset
 *     const rows = yield* dataset.query`SELECT max(_id) AS max_id FROM ${dataset.table("user_comments")} WHERE user_id = ${userId}`
 *     return Number(rows[0]?.max_id ?? 0) // max_id: a number on SQLite and PostgreSQL alike
 *   })
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Dataset, OpenError } from "../dataset/Dataset.js"

/** @since 0.1.0 */
export interface PipelineContextShape {
  readonly pipelineName: string
  readonly datasetName: string
  readonly destinationName: string
  /** true until a run of this pipeline has committed a load */
  readonly firstRun: boolean
  /** the pipeline's working directory */
  readonly workingDir: string
  /**
   * read access to the loaded data of the pipeline's dataset (see `Dataset`), as committed before
   * this run: opened when asked, with the stored schemas as the destination holds them
   */
  readonly dataset: Effect.Effect<Dataset, OpenError>
}

/**
 * The running pipeline.
 *
 * @since 0.1.0
 */
export class PipelineContext extends Context.Tag("pipestate/PipelineContext")<
  PipelineContext,
  PipelineContextShape
>() {}

/** @since 0.1.0 */
export const layer = (context: PipelineContextShape): Layer.Layer<PipelineContext> =>
  Layer.succeed(PipelineContext, context)

/** @since 0.1.0 */
export const firstRun: Effect.Effect<boolean, never, PipelineContext> = Effect.map(PipelineContext, (c) => c.firstRun)

/** @since 0.1.0 */
export const dataset: Effect.Effect<Dataset, OpenError, PipelineContext> = Effect.flatMap(
  PipelineContext,
  (c) => c.dataset
)
