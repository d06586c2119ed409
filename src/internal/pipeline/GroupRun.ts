/**
 * Marks a run as one group of an orchestrated run (see `Orchestrator`): when this service is in
 * context, `Pipeline.run` records `(pipeline, run id, group)` with the group's summary in
 * `_pipestate_group_runs`, in the SAME transaction as the rows and the state. A group of a run
 * thus commits at most once, and whoever finds the record knows the group is done and what it did.
 *
 * @example
 * ```ts
 * const summary = yield* Pipeline.run(group.source).pipe(
 *   Effect.provideService(GroupRun.GroupRun, { runId: "2026-11-29", group: group.name, encode: JSON.stringify })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { LoadSummary } from "../../pipeline/Pipeline.js"

/**
 * @since 0.1.0
 */
export interface GroupRunShape {
  /** the orchestrated run this group belongs to (the driver's run id) */
  readonly runId: string
  /** the group's name (`SourceGroup.name`) */
  readonly group: string
  /** the record's summary text, from the run's summary (called inside the commit transaction) */
  readonly encode: (summary: LoadSummary) => string
}

/**
 * @since 0.1.0
 */
export class GroupRun extends Context.Tag("pipestate/GroupRun")<GroupRun, GroupRunShape>() {}
