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
  DestinationError,
  type GroupRunRow,
  type DestinationShape,
  type HoldRow,
  type LoadRow,
  type RunLoadRow,
  type Stage,
  StateConflict,
  type StateRow,
  type StateRowInfo,
  type StoredState
} from "../../destination/Destination.js"
import type { TableSchema } from "../destination/TableSchema.js"
import * as StoredSchema from "../schema/StoredSchema.js"
import * as VersionRow from "../schema/VersionRow.js"
import type { Expectation } from "./StateSync.js"

/**
 * The state a commit writes, given the destination's newest state row found under the commit lock.
 * `expected` says which newest state the change started from; when another change committed since,
 * `onMoved` may combine both (it reads the newer blob through `read`) or fail with `StateConflict`.
 *
 * @since 0.1.0
 */
export interface StateResolution<A, E> {
  readonly expected: Expectation
  /** the state row (none when the state did not change) and what the caller wants back */
  readonly onExpected: (found: StateRowInfo | undefined) => Effect.Effect<Resolved<A>, E>
  readonly onMoved: (
    found: StateRowInfo,
    read: Effect.Effect<Option.Option<StoredState>, DestinationError>
  ) => Effect.Effect<Resolved<A>, E | DestinationError>
}

/**
 * A resolved state: its row without a load id (the commit gives it one), and the caller's value.
 *
 * @since 0.1.0
 */
export interface Resolved<A> {
  readonly row: Option.Option<Omit<StateRow, "loadId">>
  readonly value: A
}

/**
 * Everything one commit writes.
 *
 * @since 0.1.0
 */
export interface CommitRequest<A, E> {
  readonly pipelineName: string
  readonly load: LoadRow
  readonly stage: Option.Option<Stage>
  /** final schemas of the tables this load writes (tables of `replace` resources are listed even with no rows) */
  readonly tables: ReadonlyArray<TableSchema>
  /** tables dropped in the same transaction; `_dlt*` tables are never dropped */
  readonly dropTables: ReadonlyArray<string>
  readonly state: StateResolution<A, E>
  /** state rows kept per pipeline; older rows are pruned in the same transaction */
  readonly keepStateVersions: number
  /** a new load id after `after` (for a state row that must sort after one committed meanwhile) */
  readonly loadIdAfter: (after: string) => Effect.Effect<string>
  /** the stored schemas this load changes; `load.schemaVersionHash` is set from `load.schemaName`'s */
  readonly schemas: ReadonlyArray<SchemaChange>
  /** the group-run record of an orchestrated group, written with the load (given the state's value and the load id) */
  readonly groupRun?: (value: A, loadId: string) => GroupRunRow
  /** the run this load belongs to (runs with checkpoints), recorded in `_pipestate_loads`, and its hold tables */
  readonly run?: RunInfo
}

/**
 * The run a load of a run with checkpoints belongs to, and what its commit does with hold tables.
 *
 * @since 0.3.0
 */
export interface RunInfo extends Omit<RunLoadRow, "loadId" | "insertedAt"> {
  readonly holds?: HoldPlan
}

/**
 * What a commit of a run with checkpoints does with hold tables (see `Destination.HoldTransaction`),
 * all inside its transaction: first drop the hold tables of the pipeline's unfinished runs, then
 * prepare the hold tables its stage writes rows into (listed in `tables` as `append` tables), and
 * after `writeTables` move the rows of `release` into their tables (listed in `tables` too).
 *
 * @since 0.3.0
 */
export interface HoldPlan {
  /** the run's working dir (see `HoldRow.owner`) */
  readonly owner: string
  readonly discardOthers: boolean
  readonly prepare: ReadonlyArray<{
    readonly table: string
    /** the hold table's schema (its name is the hold table's) */
    readonly hold: TableSchema
    /** an earlier commit of the run recorded it */
    readonly existing: boolean
  }>
  readonly release: ReadonlyArray<{ readonly table: TableSchema; readonly holdTable: string }>
}

/**
 * How a load changes one source's stored schema (`_dlt_version`): tables it wrote (merged into the
 * newest stored version, so concurrent loads of other tables are kept) and tables it dropped.
 *
 * @since 0.1.0
 */
export interface SchemaChange {
  readonly name: string
  readonly tables: ReadonlyArray<StoredSchema.Table>
  readonly dropTables: ReadonlyArray<string>
}

/**
 * A schema a commit left as the newest.
 *
 * @since 0.1.0
 */
export interface CommittedSchema {
  readonly schema: StoredSchema.StoredSchema
  /** a new version was inserted */
  readonly inserted: boolean
}

/**
 * The result of {@link apply}: the state resolution's value and the schemas now newest.
 *
 * @since 0.1.0
 */
export interface Applied<A> {
  readonly value: A
  readonly schemas: ReadonlyArray<CommittedSchema>
}

/**
 * Whether the destination's newest state row is the one `expected` names.
 *
 * @since 0.1.0
 */
export const isExpected = (expected: Expectation, found: StateRowInfo | undefined): boolean => {
  if (expected._tag === "Unchecked") return true
  const want = Option.getOrNull(expected.newest)
  return found === undefined
    ? want === null
    : want !== null && want.version === found.version && want.hash === found.versionHash
}

/**
 * The conflict of a change that started from `expected` and found `found`.
 *
 * @since 0.1.0
 */
export const conflict = (
  pipelineName: string,
  dataset: string,
  expected: Expectation,
  found: StateRowInfo | undefined,
  paths?: ReadonlyArray<string>
): StateConflict => {
  const want = expected._tag === "Newest" ? Option.getOrNull(expected.newest) : null
  return new StateConflict({
    pipelineName,
    dataset,
    expectedVersion: want?.version ?? null,
    expectedHash: want?.hash ?? null,
    foundVersion: found?.version ?? null,
    foundHash: found?.versionHash ?? null,
    ...(paths === undefined ? {} : { paths })
  })
}

/**
 * Commits `request` through `destination` in one transaction and returns what the state resolution
 * returned. Fails with `StateConflict`, writing nothing, when another change committed since
 * `request.state.expected` was read and the two cannot be combined.
 *
 * @since 0.1.0
 */
export const apply = <A, E>(
  destination: DestinationShape,
  target: DatasetTarget,
  request: CommitRequest<A, E>
): Effect.Effect<Applied<A>, E | DestinationError | StateConflict | StoredSchema.InvalidStoredSchema> =>
  destination.transaction(target, { pipelineName: request.pipelineName, stage: request.stage }, (tx) =>
    Effect.gen(function* () {
      const found = (yield* tx.stateRows(request.pipelineName, 1))[0]
      const expected = isExpected(request.state.expected, found)
      if (!expected && found === undefined) {
        // the state this change started from is gone (the dataset was reset meanwhile)
        return yield* conflict(request.pipelineName, target.dataset, request.state.expected, found)
      }
      const { row, value } =
        expected || found === undefined
          ? yield* request.state.onExpected(found)
          : yield* request.state.onMoved(found, tx.readState(request.pipelineName, found.loadId))
      const drops = request.dropTables.filter((table) => !table.startsWith("_dlt"))
      if (drops.length > 0) yield* tx.dropTables(drops)
      const plan = request.run?.holds
      const holdRow = (table: string, holdTable: string): HoldRow => ({
        pipelineName: request.pipelineName,
        runId: request.run?.runId ?? request.load.loadId,
        table,
        holdTable,
        owner: request.run?.holds?.owner ?? "",
        insertedAt: request.load.insertedAt
      })
      const holds = tx.holds
      if (plan !== undefined) {
        if (holds === undefined) {
          if (plan.prepare.length > 0 || plan.release.length > 0) {
            return yield* new DestinationError({
              destination: destination.name,
              operation: "hold rows for the run's final commit",
              reason:
                "the destination names hold tables (holdTable) but its transaction keeps none (Transaction.holds): implement both or neither"
            })
          }
        } else {
          yield* Effect.gen(function* () {
            if (plan.discardOthers) {
              const dropped = yield* holds.discardOthers(request.pipelineName, request.run?.runId ?? "", plan.owner)
              if (dropped.length > 0) {
                yield* Effect.logInfo(
                  `pipeline ${request.pipelineName}: dropped the rows held by runs that did not finish (${dropped.join(", ")})`
                )
              }
            }
            for (const p of plan.prepare) yield* holds.prepare(holdRow(p.table, p.hold.name), p.hold, p.existing)
          }).pipe(Effect.withSpan("pipestate.hold", { attributes: { "pipestate.holds": plan.prepare.length } }))
        }
      }
      if (request.tables.length > 0) yield* tx.writeTables(request.tables)
      if (plan !== undefined && holds !== undefined && plan.release.length > 0) {
        yield* Effect.forEach(plan.release, (r) => holds.release(holdRow(r.table.name, r.holdTable), r.table), {
          discard: true
        }).pipe(Effect.withSpan("pipestate.release", { attributes: { "pipestate.holds": plan.release.length } }))
      }
      // each schema: this load's tables merged into the newest stored version, a new version when
      // that changes it; the pipeline's state table joins the schema of the load that writes state
      const schemas: Array<CommittedSchema> = []
      for (const change of request.schemas) {
        const stored = yield* tx.readSchema(change.name, { _tag: "Newest" })
        const base = Option.isSome(stored)
          ? yield* VersionRow.fromVersionRow({
              version: stored.value.version,
              schema_name: stored.value.schemaName,
              version_hash: stored.value.versionHash,
              schema: stored.value.schema
            })
          : StoredSchema.empty(change.name)
        let next = StoredSchema.mergeTables(base, change.tables)
        if (Option.isSome(row) && change.name === request.load.schemaName) {
          next = StoredSchema.withPipelineStateTable(next)
        }
        if (change.dropTables.length > 0) next = StoredSchema.dropTables(next, change.dropTables)
        next = StoredSchema.bump(next)
        const inserted = Option.isNone(stored) || next.version_hash !== stored.value.versionHash
        if (inserted) {
          const versionRow = VersionRow.toVersionRow(next, request.load.insertedAt)
          yield* tx.insertSchema({
            version: versionRow.version,
            engineVersion: versionRow.engine_version,
            insertedAt: versionRow.inserted_at,
            schemaName: versionRow.schema_name,
            versionHash: versionRow.version_hash,
            schema: versionRow.schema
          })
        }
        schemas.push({ schema: next, inserted })
      }
      const schemaHash = schemas.find((s) => s.schema.name === request.load.schemaName)?.schema.version_hash
      const load = { ...request.load, schemaVersionHash: schemaHash ?? request.load.schemaVersionHash }
      yield* tx.insertLoad(load)
      const recordRun = (loadId: string) =>
        request.run === undefined || tx.insertRunLoad === undefined
          ? Effect.void
          : tx.insertRunLoad({
              runId: request.run.runId,
              checkpoint: request.run.checkpoint,
              final: request.run.final,
              loadId,
              insertedAt: request.load.insertedAt
            })
      yield* recordRun(load.loadId)
      if (Option.isSome(row)) {
        // the newest state is the row of the newest load (dlt's rule): a load id taken before
        // another change committed a later one gets a state load of its own that sorts after it
        const loadId =
          found !== undefined && found.loadId >= request.load.loadId
            ? yield* request.loadIdAfter(found.loadId)
            : request.load.loadId
        if (loadId !== request.load.loadId) {
          yield* tx.insertLoad({ ...load, loadId })
          yield* recordRun(loadId)
        }
        yield* tx.insertState({ ...row.value, loadId })
        const keep = Math.max(1, Math.floor(request.keepStateVersions))
        if (tx.trimStates !== undefined) {
          yield* tx.trimStates(request.pipelineName, keep)
        } else {
          const kept = yield* tx.stateRows(request.pipelineName, keep)
          const oldest = kept[keep - 1]
          if (oldest !== undefined) yield* tx.deleteStatesBefore(request.pipelineName, oldest.loadId)
        }
      }
      if (request.groupRun !== undefined) {
        if (tx.insertGroupRun === undefined) {
          return yield* new DestinationError({
            destination: destination.name,
            operation: "record the group run",
            reason:
              "this destination does not record group runs (Transaction.insertGroupRun), so it cannot run orchestrated groups exactly once"
          })
        }
        yield* tx.insertGroupRun(request.groupRun(value, request.load.loadId))
      }
      return { value, schemas }
    })
  )
