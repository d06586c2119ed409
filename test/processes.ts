/**
 * Child processes for the multi-process tests: `node --import tsx <script> ...args`, their stdout
 * lines, and a wait for a line. Every process started through `spawnScoped` is killed (SIGKILL)
 * when the scope closes, if it still runs.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { Effect } from "effect"

export const REPO_ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")

export interface Child {
  readonly child: ChildProcess
  readonly pid: number
  readonly lines: Array<string>
  /** when each line arrived (ms since the epoch) */
  readonly times: Array<number>
  readonly stderr: () => string
  /** the first line starting with `prefix` (seen before or later); rejects when the process exits first or on timeout */
  readonly waitFor: (prefix: string, timeoutMs?: number) => Promise<string>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly hasExited: () => boolean
}

/**
 * `script` bundled into one plain ESM file (packages stay imports) under `.pipestate-test/bundles`,
 * so that many processes start without each compiling TypeScript on a loaded machine.
 */
export const bundle = async (script: string): Promise<string> => {
  const outfile = NodePath.join(
    REPO_ROOT,
    ".pipestate-test",
    "bundles",
    `${NodePath.basename(script, ".ts")}-${process.pid}-${Date.now()}.mjs`
  )
  await build({
    entryPoints: [NodePath.join(REPO_ROOT, script)],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile,
    logLevel: "error"
  })
  return outfile
}

/** `node <file>` for a bundle, `node --import tsx <file>` for TypeScript */
export const spawnScript = (script: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Child => {
  const file = NodePath.isAbsolute(script) ? script : NodePath.join(REPO_ROOT, script)
  const loader = file.endsWith(".ts") ? ["--import", "tsx"] : []
  const child = spawn(process.execPath, [...loader, file, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "", ...env }
  })
  if (child.pid === undefined) throw new Error(`could not spawn ${script}`)
  const lines: Array<string> = []
  const times: Array<number> = []
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = []
  let stderr = ""
  let done = false
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line)
    times.push(Date.now())
    for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(line)
    }
  })
  child.stderr!.on("data", (data: Buffer) => {
    stderr += data.toString("utf8")
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      done = true
      resolve({ code, signal })
    })
  })
  const waitFor = (prefix: string, timeoutMs = 60_000) => {
    const seen = lines.find((line) => line.startsWith(prefix))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`pid ${child.pid}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs
      )
      waiters.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        }
      })
      void exited.then(({ code, signal }) => {
        clearTimeout(timer)
        const late = lines.find((line) => line.startsWith(prefix))
        if (late !== undefined) resolve(late)
        else
          reject(
            new Error(
              `pid ${child.pid} exited (${code ?? signal}) before printing "${prefix}"; stdout: ${lines.join(" | ")}; stderr: ${stderr}`
            )
          )
      })
    })
  }
  return { child, pid: child.pid, lines, times, stderr: () => stderr, waitFor, exited, hasExited: () => done }
}

/** a child killed with SIGKILL when the scope closes (if it still runs) */
export const spawnScoped = (script: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => spawnScript(script, args, env)),
    (run) =>
      Effect.promise(async () => {
        if (!run.hasExited()) {
          run.child.kill("SIGKILL")
          await run.exited
        }
      })
  )
