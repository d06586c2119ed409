/**
 * source-state contention: 8 resources of one source run concurrently through `Pipeline.run` (memory
 * destination, concurrency 8), each doing 100,000 `SourceState.update` of one shared counter. The
 * figure is updates per second over the extract phase (from the Progress phase boundaries), and the
 * committed counter must be exactly 8 x 100,000. Baseline: as many `Ref.update` increments of a
 * plain Ref in one fiber.
 */
import { Effect, Layer, ManagedRuntime, Option, Ref, Stream } from "effect"
import { Destination, Pipeline, Progress, Resource, Source, SourceState } from "../src/index.js"
import { type Benchmark, makeTempDir, removeDir } from "./lib/env.js"
import { type PhaseMarks, phaseDurations, phaseRecorder } from "./lib/pipestate.js"
import { alternate, median, timed } from "./lib/stats.js"

const RESOURCES = 8

const increment = (current: Option.Option<unknown>): number => (Option.getOrElse(current, () => 0) as number) + 1

const contendingSource = (perResource: number) =>
  Source.make({
    name: "bench",
    resources: Array.from({ length: RESOURCES }, (_, r) =>
      Resource.make(
        { name: `worker_${r}` },
        Stream.execute(
          Effect.gen(function* () {
            for (let i = 0; i < perResource; i++) yield* SourceState.update("counter", increment)
          })
        )
      )
    )
  })

export const sourceState: Benchmark = {
  id: "source-state",
  figures: ["source state updates"],
  run: async (options) => {
    const perResource = Math.round(100_000 * options.scale)
    const total = perResource * RESOURCES
    let counterError: string | undefined

    const pipestate = async (): Promise<number> => {
      const dir = makeTempDir("source-state")
      const runtime = ManagedRuntime.make(
        Layer.merge(
          Destination.memory(),
          Pipeline.layerNode({
            name: "bench_source_state",
            dataset: "bench",
            pipelinesDir: dir,
            concurrency: RESOURCES
          })
        )
      )
      try {
        const marks: PhaseMarks = {}
        const run = await timed(() =>
          runtime.runPromise(
            Pipeline.run(contendingSource(perResource)).pipe(
              Effect.provideService(Progress.Progress, phaseRecorder(marks))
            )
          )
        )
        const state = await runtime.runPromise(Pipeline.currentState)
        const counter = state.sources.bench?.counter
        if (counter !== total) {
          counterError = `the committed counter is ${String(counter)}, expected ${total}: updates were lost`
          options.log(`  FAILED: ${counterError}`)
        }
        const extract = phaseDurations(marks).extract
        options.log(`  (whole run ${run.ms.toFixed(1)} ms, extract phase ${extract.toFixed(1)} ms)`)
        return extract
      } finally {
        await runtime.dispose()
        removeDir(dir)
      }
    }

    const baseline = async (): Promise<number> => {
      const { ms, value } = await timed(() =>
        Effect.runPromise(
          Effect.gen(function* () {
            const ref = yield* Ref.make(0)
            for (let i = 0; i < total; i++) yield* Ref.update(ref, (n) => n + 1)
            return yield* Ref.get(ref)
          })
        )
      )
      if (value !== total) throw new Error(`the baseline counted ${value}, expected ${total}`)
      return ms
    }

    options.log(
      `source state: ${RESOURCES} concurrent resources x ${perResource.toLocaleString("en-US")} SourceState.update (Pipeline.run, memory destination), ${options.reps} repetitions`
    )
    const times = await alternate(options, baseline, pipestate)
    const value = total / (median(times.pipestate) / 1000)
    const base = total / (median(times.baseline) / 1000)
    return [
      {
        name: "source state updates",
        value,
        unit: "updates/s",
        baseline: base,
        ratio: value / base,
        note: `through Pipeline.run (memory destination, ${RESOURCES} resources at concurrency ${RESOURCES}), timed over the extract phase; baseline: ${total.toLocaleString("en-US")} Ref.update increments in one fiber`,
        ...(counterError === undefined ? {} : { error: counterError })
      }
    ]
  }
}
