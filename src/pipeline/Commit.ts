/**
 * What runs inside the ONE commit transaction of every state change, written once for every
 * destination: the optimistic check (the destination's newest state must still be the one the
 * change started from), the table drops and writes, the `_dlt_loads` row, the
 * `_dlt_pipeline_state` row, and retention (the newest `keepStateVersions` state rows are kept).
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import {
  type DatasetTarget,
  type DestinationError,
  type DestinationShape,
  type LoadRow,
  type Stage,
  StateConflict,
  type StateRow,
  type StateRowInfo
} from "../destination/Destination.js"
import type { TableSchema } from "../destination/TableSchema.js"
import type { Expectation } from "./StateSync.js"

/**
 * Everything one commit writes.
 *
 * @since 0.1.0
 */
export interface CommitRequest {
  readonly pipelineName: string
  readonly load: LoadRow
  readonly stage: Option.Option<Stage>
  /** final schemas of the tables this load writes (tables of `replace` resources are listed even with no rows) */
  readonly tables: ReadonlyArray<TableSchema>
  /** tables dropped in the same transaction; `_dlt*` tables are never dropped */
  readonly dropTables: ReadonlyArray<string>
  readonly state: Option.Option<StateRow>
  readonly expected: Expectation
  /** state rows kept per pipeline; older rows are pruned in the same transaction */
  readonly keepStateVersions: number
}

const sameState = (expected: Expectation, found: StateRowInfo | undefined): boolean => {
  if (expected._tag === "Unchecked") return true
  const want = Option.getOrNull(expected.newest)
  return found === undefined
    ? want === null
    : want !== null && want.version === found.version && want.hash === found.versionHash
}

/**
 * Commits `request` through `destination` in one transaction. Fails with `StateConflict`, writing
 * nothing, when another change committed since `request.expected` was read.
 *
 * @since 0.1.0
 */
export const apply = (
  destination: DestinationShape,
  target: DatasetTarget,
  request: CommitRequest
): Effect.Effect<void, DestinationError | StateConflict> =>
  destination.transaction(target, { pipelineName: request.pipelineName, stage: request.stage }, (tx) =>
    Effect.gen(function* () {
      const found = (yield* tx.stateRows(request.pipelineName, 1))[0]
      if (!sameState(request.expected, found)) {
        const want = request.expected._tag === "Newest" ? Option.getOrNull(request.expected.newest) : null
        return yield* new StateConflict({
          pipelineName: request.pipelineName,
          dataset: target.dataset,
          expectedVersion: want?.version ?? null,
          expectedHash: want?.hash ?? null,
          foundVersion: found?.version ?? null,
          foundHash: found?.versionHash ?? null
        })
      }
      const drops = request.dropTables.filter((table) => !table.startsWith("_dlt"))
      if (drops.length > 0) yield* tx.dropTables(drops)
      if (request.tables.length > 0) yield* tx.writeTables(request.tables)
      yield* tx.insertLoad(request.load)
      if (Option.isSome(request.state)) {
        yield* tx.insertState(request.state.value)
        const keep = Math.max(1, Math.floor(request.keepStateVersions))
        const kept = yield* tx.stateRows(request.pipelineName, keep)
        const oldest = kept[keep - 1]
        if (oldest !== undefined) yield* tx.deleteStatesBefore(request.pipelineName, oldest.loadId)
      }
    })
  )
