/**
 * Progress of a run: per-resource row counts while it extracts, then the commit. `Pipeline.run`
 * reports to the `Progress` service when one is provided; `console` draws a live line on a TTY and
 * plain lines otherwise.
 *
 * @example
 * ```ts
 * Pipeline.run(source).pipe(Effect.provide(Progress.console()))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Console, Context, Effect, Layer } from "effect"

/**
 * A phase of a run.
 *
 * @since 0.1.0
 */
export type Phase = "restore" | "extract" | "commit" | "done"

/** @since 0.1.0 */
export interface ProgressShape {
  readonly phase: (pipelineName: string, phase: Phase) => Effect.Effect<void>
  /** `rows` is the resource's running total; called once per staged batch, not per row */
  readonly rows: (resource: string, rows: number) => Effect.Effect<void>
  readonly resourceDone: (resource: string, rows: number) => Effect.Effect<void>
}

/**
 * Where a run reports its progress.
 *
 * @since 0.1.0
 */
export class Progress extends Context.Tag("pipestate/Progress")<Progress, ProgressShape>() {}

/** @since 0.1.0 */
export const silent: ProgressShape = {
  phase: () => Effect.void,
  rows: () => Effect.void,
  resourceDone: () => Effect.void
}

/**
 * A terminal to draw the live line on: `process.stderr` when it is a TTY.
 *
 * @since 0.1.0
 */
export interface Terminal {
  readonly write: (text: string) => unknown
}

/**
 * Writes progress: on a terminal (`tty`) one live line redrawn in place (at most every 100 ms);
 * without one, a line per phase and per finished resource through Effect's `Console` (its `error`
 * channel, so stdout stays for a program's own output; tests capture it with `Console.setConsole`).
 *
 * @since 0.1.0
 */
export const makeConsole = (
  tty: Terminal | undefined = process.stderr.isTTY ? process.stderr : undefined
): ProgressShape => {
  const counts = new Map<string, number>()
  let lastDraw = 0
  let pipeline = ""
  const line = () =>
    `${pipeline}: ${[...counts.entries()].map(([resource, rows]) => `${resource} ${rows.toLocaleString("en-US")} rows`).join(", ")}`
  const draw = (out: Terminal, force: boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        if (!force && now - lastDraw < 100) return
        lastDraw = now
        out.write(`\r\u001b[2K${line()}`)
      })
    )
  return {
    phase: (name, phase) =>
      Effect.suspend(() => {
        pipeline = name
        if (tty !== undefined) {
          if (phase === "done") return Effect.sync(() => tty.write(`\r\u001b[2K${line()} (committed)\n`))
          return draw(tty, true)
        }
        return Console.error(`${name}: ${phase}`)
      }),
    rows: (resource, rows) =>
      Effect.suspend(() => {
        counts.set(resource, rows)
        return tty !== undefined ? draw(tty, false) : Effect.void
      }),
    resourceDone: (resource, rows) =>
      Effect.suspend(() => {
        counts.set(resource, rows)
        return tty !== undefined
          ? draw(tty, true)
          : Console.error(`${pipeline}: ${resource} extracted ${rows.toLocaleString("en-US")} rows`)
      })
  }
}

/**
 * Progress on the process's stderr.
 *
 * @since 0.1.0
 */
export const console = (): Layer.Layer<Progress> => Layer.sync(Progress, () => makeConsole())
