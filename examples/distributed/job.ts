/**
 * The job every runner and the driver of the example share (the same code deployed everywhere):
 * the shop source decomposed into one group per resource, loaded by pipeline `shop_pipeline`.
 */
import { Duration, Effect, Either } from "effect"
import { Source } from "../../src/index.js"
import type { Job } from "../../src/orchestrator/Orchestrator.js"
import { shop } from "./shop.js"

export interface JobOptions {
  readonly dataset: string
  readonly pipelinesDir: string
  readonly resources: number
  readonly rows: number
  readonly chunkSize?: number
  readonly chunkDelayMs?: number
  /** called when a resource starts extracting (the runner prints which group it runs) */
  readonly onExtract?: (resource: string) => void
}

export const makeJob = (options: JobOptions): Job<never, never> => ({
  pipeline: { name: "shop_pipeline", dataset: options.dataset, pipelinesDir: options.pipelinesDir },
  groups: Either.getOrThrow(
    Source.decompose(
      shop({
        resources: options.resources,
        rows: options.rows,
        ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
        ...(options.chunkDelayMs === undefined || options.chunkDelayMs <= 0
          ? {}
          : { chunkDelay: Duration.millis(options.chunkDelayMs) }),
        beforeExtract: (resource) => Effect.sync(() => options.onExtract?.(resource))
      })
    )
  ) as Job<never, never>["groups"]
})
