/**
 * The pipestate side of the benchmarks: the rows as a source, and a Progress service that stamps
 * the phase boundaries of a run.
 */
import { Effect, Stream } from "effect"
import { type Progress, Resource, Source } from "../../src/index.js"
import { now } from "./stats.js"
import { rows } from "./rows.js"

/** A source with one append resource `players` streaming n rows lazily. */
export const rowsSource = (n: number) =>
  Source.make({
    name: "bench",
    resources: [Resource.make({ name: "players", writeDisposition: "append" }, Stream.fromIterable(rows(n)))]
  })

/** The time (performance.now()) each phase of a run began. */
export type PhaseMarks = Partial<Record<Progress.Phase, number>>

/** A Progress service writing the phase boundaries into `marks`. */
export const phaseRecorder = (marks: PhaseMarks): Progress.ProgressShape => ({
  phase: (_pipeline, phase) =>
    Effect.sync(() => {
      marks[phase] = now()
    }),
  rows: () => Effect.void,
  resourceDone: () => Effect.void
})

/** restore → extract → commit → done, in ms; NaN where a boundary is missing. */
export const phaseDurations = (marks: PhaseMarks) => ({
  restore: (marks.extract ?? Number.NaN) - (marks.restore ?? Number.NaN),
  extract: (marks.commit ?? Number.NaN) - (marks.extract ?? Number.NaN),
  commit: (marks.done ?? Number.NaN) - (marks.commit ?? Number.NaN),
  inside: (marks.done ?? Number.NaN) - (marks.restore ?? Number.NaN)
})

/** Logs where a run's time went. */
export const logPhases = (log: (line: string) => void, totalMs: number, marks: PhaseMarks): void => {
  const d = phaseDurations(marks)
  log(
    `    pipestate phases: restore ${d.restore.toFixed(0)} ms, extract+normalize+stage ${d.extract.toFixed(0)} ms, commit ${d.commit.toFixed(0)} ms, other ${(totalMs - d.inside).toFixed(0)} ms`
  )
}
