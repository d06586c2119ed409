/**
 * Runs an example's `main.ts` as a user would (`npx tsx examples/<name>/main.ts`), in a child
 * process, and returns what it printed.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Effect } from "effect"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

export const runExample = (
  example: string,
  options: { readonly args?: ReadonlyArray<string>; readonly env?: Readonly<Record<string, string>> } = {}
): Effect.Effect<string, Error> =>
  Effect.tryPromise({
    try: () =>
      promisify(execFile)("npx", ["tsx", `examples/${example}/main.ts`, ...(options.args ?? [])], {
        cwd: ROOT,
        env: { ...process.env, ...options.env },
        timeout: 120_000
      }),
    catch: (error) =>
      new Error(`examples/${example}/main.ts failed: ${String((error as { stderr?: unknown }).stderr ?? error)}`)
  }).pipe(Effect.map(({ stdout }) => stdout))
