/**
 * A resource: a named stream of records with a write disposition.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Resource } from "effect-pipestate"
 *
 * const users = Resource.make(
 *   { name: "users", writeDisposition: "merge", primaryKey: ["id"] },
 *   Stream.make({ id: 1, name: "Ada" }, { id: 2, name: "Grace" })
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { Stream } from "effect"
import type { PipelineContext } from "../context/PipelineContext.js"
import type { ResourceState } from "../context/ResourceState.js"
import type { SourceState } from "../context/SourceState.js"
import type { CheckpointOptions } from "../internal/pipeline/Checkpoint.js"
import type { WriteDisposition } from "../internal/destination/TableSchema.js"

/**
 * The services the pipeline provides to every resource stream.
 *
 * @since 0.1.0
 */
export type ResourceServices = ResourceState | SourceState | PipelineContext

/** @since 0.1.0 */
export interface ResourceOptions {
  readonly name: string
  /** the table the records go to; by default the resource's name */
  readonly tableName?: string
  /** `append` (default), `replace` (the table and the resource state start empty every run) or `merge` (upsert on `primaryKey`) */
  readonly writeDisposition?: WriteDisposition
  /** the field(s) identifying a record (`merge` upserts on them): one name or a list, as in dlt */
  readonly primaryKey?: string | ReadonlyArray<string>
  /** commit as the resource goes (overrides the pipeline's `checkpoint`; see `Checkpoint`) */
  readonly checkpoint?: CheckpointOptions | undefined
}

/** @since 0.1.0 */
export interface Resource<E = never, R = never> {
  readonly _tag: "Resource"
  readonly name: string
  readonly tableName: string
  readonly writeDisposition: WriteDisposition
  readonly primaryKey: ReadonlyArray<string>
  /** the resource's own checkpoint option, when it has one */
  readonly checkpoint?: CheckpointOptions | undefined
  readonly stream: Stream.Stream<unknown, E, R>
}

/**
 * Defines a resource. Its stream may require `ResourceState`, `SourceState` and `PipelineContext`;
 * the pipeline provides them.
 *
 * @since 0.1.0
 */
export const make = <E, R>(options: ResourceOptions, stream: Stream.Stream<unknown, E, R>): Resource<E, R> => ({
  _tag: "Resource",
  name: options.name,
  tableName: options.tableName ?? options.name,
  writeDisposition: options.writeDisposition ?? "append",
  primaryKey: typeof options.primaryKey === "string" ? [options.primaryKey] : (options.primaryKey ?? []),
  ...(options.checkpoint === undefined ? {} : { checkpoint: options.checkpoint }),
  stream
})
