/**
 * The CLI's console: color codes stay on a terminal and go in a pipe, a file or with NO_COLOR.
 */
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect } from "effect"
import * as PlainConsole from "../../src/cli/PlainConsole.js"

const recording = () => {
  const out: Array<unknown> = []
  const err: Array<unknown> = []
  return { out, err }
}

const run = (colors: { stdout: boolean; stderr: boolean }) =>
  Effect.gen(function* () {
    const seen = recording()
    const base = yield* Console.consoleWith((console) => Effect.succeed(console))
    const capture: Console.Console = {
      ...base,
      log: (...args) => Effect.sync(() => void seen.out.push(...args)),
      error: (...args) => Effect.sync(() => void seen.err.push(...args)),
      unsafe: { ...base.unsafe, log: (...args) => void seen.out.push(...args) }
    }
    const console = PlainConsole.make(capture, colors)
    const bold = "\u001b[0;1mUSAGE\u001b[0m"
    yield* console.log(bold, 42)
    yield* console.error(bold)
    console.unsafe.log(bold)
    return seen
  })

describe("PlainConsole", () => {
  it.effect("strips the codes of each stream that is not a terminal, keeps other values", () =>
    Effect.gen(function* () {
      const piped = yield* run({ stdout: false, stderr: true })
      expect(piped.out).toEqual(["USAGE", 42, "USAGE"])
      expect(piped.err).toEqual(["\u001b[0;1mUSAGE\u001b[0m"])
      const terminal = yield* run({ stdout: true, stderr: true })
      expect(terminal.out).toEqual(["\u001b[0;1mUSAGE\u001b[0m", 42, "\u001b[0;1mUSAGE\u001b[0m"])
    })
  )

  it("NO_COLOR turns colors off on both streams", () => {
    expect(PlainConsole.colorsOf({ NO_COLOR: "1" })).toEqual({ stdout: false, stderr: false })
    expect(PlainConsole.colorsOf({ NO_COLOR: "" }).stdout).toBe(process.stdout.isTTY === true)
  })
})
