/**
 * What a resource's stream can ask of a run with checkpoints: to keep the resource's rows and
 * state for the run's final commit (`Incremental` asks it for a cursor over rows in no promised
 * order, whose state could otherwise claim rows still to come). Provided to each resource's stream
 * by `Checkpoint`; absent in runs without checkpoints.
 *
 * @since 0.3.0
 */
import { Context, type Effect } from "effect"

/**
 * @since 0.3.0
 */
export interface CheckpointHoldShape {
  /** from now on, the resource's rows and state wait for the run's final commit */
  readonly holdToEnd: Effect.Effect<void>
}

/**
 * @since 0.3.0
 */
export class CheckpointHold extends Context.Tag("pipestate/CheckpointHold")<CheckpointHold, CheckpointHoldShape>() {}
