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
import type { DatasetTarget, DestinationError, DestinationShape, SchemaSelector } from "../destination/Destination.js"
import type * as StoredSchema from "../schema/StoredSchema.js"
import * as VersionRow from "../schema/VersionRow.js"

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
