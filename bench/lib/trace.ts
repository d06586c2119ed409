/**
 * Wall-time breakdown of pipeline runs, for `--trace`: a Tracer that records every span (each
 * @effect/sql statement is a `sql.execute` span carrying its SQL text), and a wrapper timing each
 * call of the Destination service.
 */
import { Effect, Layer, type Option, Tracer } from "effect"
import { Destination } from "../../src/index.js"
import { median, now } from "./stats.js"

export interface TraceRecord {
  readonly what: string
  readonly ms: number
}

let nextId = 0

/** A tracer pushing one record per ended span: `sql <text>` for statements, the span name otherwise. */
export const recordingTracer = (records: Array<TraceRecord>): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent: Option.Option<Tracer.AnySpan>, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      return {
        _tag: "Span",
        name,
        spanId: `bench${++nextId}`,
        traceId: "bench",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          const text = attributes.get("db.query.text")
          const what = typeof text === "string" ? `sql ${text.replace(/\s+/g, " ")}` : `span ${name}`
          records.push({ what, ms: Number(endTime - startTime) / 1e6 })
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: () => undefined,
        addLinks: () => undefined
      }
    },
    context: (f) => f()
  })

const timeEffect = <A, E, R>(
  records: Array<TraceRecord>,
  what: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const start = now()
    return Effect.ensuring(
      effect,
      Effect.sync(() => {
        records.push({ what, ms: now() - start })
      })
    )
  })

/** The destination with every call timed into `records` (`destination <method>`). */
export const timedDestination =
  (records: Array<TraceRecord>) =>
  <E, R>(inner: Layer.Layer<Destination.Destination, E, R>): Layer.Layer<Destination.Destination, E, R> =>
    Layer.effect(
      Destination.Destination,
      Effect.map(
        Destination.Destination,
        (d): Destination.DestinationShape => ({
          ...d,
          datasetExists: (t) => timeEffect(records, "destination datasetExists", d.datasetExists(t)),
          stateRows: (t, p, l) => timeEffect(records, "destination stateRows", d.stateRows(t, p, l)),
          readState: (t, p, l) => timeEffect(records, "destination readState", d.readState(t, p, l)),
          describeTables: (t, tables) => timeEffect(records, "destination describeTables", d.describeTables(t, tables)),
          stage: (t, spool) =>
            Effect.map(timeEffect(records, "destination stage", d.stage(t, spool)), (stage) => ({
              ...stage,
              write: (table, batch) => timeEffect(records, "destination stage.write", stage.write(table, batch))
            })),
          transaction: (t, options, body) =>
            timeEffect(records, "destination transaction", d.transaction(t, options, body))
        })
      )
    ).pipe(Layer.provide(inner))

/** Per kind of record: how many per run and the median time per run (records of `runs` runs). */
export const summarize = (records: ReadonlyArray<TraceRecord>, runs: number): string => {
  const groups = new Map<string, Array<number>>()
  for (const r of records) {
    const list = groups.get(r.what) ?? []
    list.push(r.ms)
    groups.set(r.what, list)
  }
  return [...groups.entries()]
    .map(([what, list]) => ({
      what,
      perRun: list.length / runs,
      total: list.reduce((a, b) => a + b, 0) / runs,
      med: median(list)
    }))
    .sort((a, b) => b.total - a.total)
    .map(
      (g) =>
        `    ${g.total.toFixed(2).padStart(7)} ms/run  ${g.perRun.toFixed(1).padStart(4)}x  median ${g.med.toFixed(2).padStart(6)} ms  ${g.what.slice(0, 150)}`
    )
    .join("\n")
}
