/**
 * The stored schemas of a pipeline's sources (dlt's `_dlt_version` documents) as the destination
 * keeps them: the newest version of a source's schema, the version a load was committed with, and
 * all of a pipeline's schemas for `pipestate pipeline <name> schema`.
 *
 * @example
 * ```ts
 * const schema = yield* Schemas.newest(destination, target, "chess") // Option<StoredSchema>
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import {
  type DatasetTarget,
  Destination,
  type DestinationError,
  type DestinationShape,
  type SchemaSelector
} from "../../destination/Destination.js"
import * as StoredSchema from "../schema/StoredSchema.js"
import * as VersionRow from "../schema/VersionRow.js"
import { Pipeline } from "../../pipeline/PipelineConfig.js"
import type * as WorkingDir from "./WorkingDir.js"

/**
 * A version of a source's schema from the destination, decoded; none when the dataset holds none.
 *
 * @since 0.1.0
 */
export const read = (
  destination: DestinationShape,
  target: DatasetTarget,
  name: string,
  selector: SchemaSelector
): Effect.Effect<Option.Option<StoredSchema.StoredSchema>, DestinationError | StoredSchema.InvalidStoredSchema> =>
  Effect.flatMap(destination.readSchema(target, name, selector), (row) =>
    Option.match(row, {
      onNone: () => Effect.succeed(Option.none()),
      onSome: (stored) =>
        Effect.map(
          VersionRow.fromVersionRow({
            version: stored.version,
            schema_name: stored.schemaName,
            version_hash: stored.versionHash,
            schema: stored.schema
          }),
          Option.some
        )
    })
  )

/**
 * The newest version of a source's schema (dlt's rule: the newest `inserted_at`).
 *
 * @since 0.1.0
 */
export const newest = (
  destination: DestinationShape,
  target: DatasetTarget,
  name: string
): Effect.Effect<Option.Option<StoredSchema.StoredSchema>, DestinationError | StoredSchema.InvalidStoredSchema> =>
  read(destination, target, name, { _tag: "Newest" })

/**
 * A source's stored schema and where it was read from.
 *
 * @since 0.1.0
 */
export interface Found {
  readonly schema: StoredSchema.StoredSchema
  readonly from: "destination" | "working dir"
}

/**
 * The stored schemas of the pipeline in context: one per source it loaded (the state's
 * `schema_names` and sources), the newest version from the destination, else the copy in the working
 * dir. Reads only.
 *
 * @example
 * ```ts
 * const schemas = yield* Schemas.ofPipeline // [{ schema: { name: "chess", version: 2, tables: ... }, from: "destination" }]
 * ```
 *
 * @since 0.1.0
 */
export const ofPipeline: Effect.Effect<
  ReadonlyArray<Found>,
  DestinationError | StoredSchema.InvalidStoredSchema | WorkingDir.CorruptStateFile | WorkingDir.WorkingDirError,
  Pipeline | Destination
> = Effect.gen(function* () {
  const { config, workingDir } = yield* Pipeline
  const destination = yield* Destination
  const target: DatasetTarget = { dataset: config.dataset, pipelineDir: workingDir.datasetDir }
  const local = yield* workingDir.readState
  const names = Option.match(local, {
    onNone: () => [] as ReadonlyArray<string>,
    onSome: (state) => [...new Set([...(state.schema_names ?? []), ...Object.keys(state.sources)])]
  })
  const found: Array<Found> = []
  for (const name of names) {
    const remote = yield* newest(destination, target, name)
    if (Option.isSome(remote)) {
      found.push({ schema: remote.value, from: "destination" })
      continue
    }
    const text = yield* workingDir.readSchema(name)
    if (Option.isSome(text)) found.push({ schema: yield* StoredSchema.fromText(text.value), from: "working dir" })
  }
  return found
})
