/** `--key=value` arguments of the example's processes, and an unbuffered line printer. */
import * as NodeFs from "node:fs"

export const parseArgs = (argv: ReadonlyArray<string>): ReadonlyMap<string, string> =>
  new Map(
    argv
      .filter((arg) => arg.startsWith("--"))
      .map((arg) => {
        const at = arg.indexOf("=")
        return at < 0 ? [arg.slice(2), "true"] : [arg.slice(2, at), arg.slice(at + 1)]
      })
  )

export const say = (line: string): void => {
  NodeFs.writeSync(1, `${line}\n`)
}

export const DEFAULT_URL = process.env.PIPESTATE_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
