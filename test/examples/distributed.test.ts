/**
 * `npm run example:distributed` as a user runs it (`npx tsx examples/distributed/main.ts`, with
 * ports and names of its own): 8 groups on 2 runners, each group's summary and runner printed,
 * the rerun of the run id loading nothing, and everything cleaned up.
 */
import { execFile } from "node:child_process"
import * as NodeNet from "node:net"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { postgresAvailable, query } from "../postgres.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

const freePort = () =>
  Effect.async<number>((resume) => {
    const server = NodeNet.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

describe.skipIf(!postgresAvailable)("example: distributed", () => {
  it.live(
    "2 runners and a driver load the 8 groups, say which runner ran each, rerun nothing, clean up",
    () =>
      Effect.gen(function* () {
        const name = `t${process.pid}`
        const ports = [yield* freePort(), yield* freePort()]
        const { stdout } = yield* Effect.promise(() =>
          promisify(execFile)(
            "npx",
            ["tsx", "examples/distributed/main.ts", `--name=${name}`, `--ports=${ports.join(",")}`],
            {
              cwd: ROOT,
              timeout: 280_000
            }
          ).catch((error: { readonly message?: string; readonly stdout?: string; readonly stderr?: string }) => {
            // what the example printed, to tell a hang from a failure
            throw new Error(
              `${error.message ?? "the example failed"}\n--- stdout (end) ---\n${String(error.stdout ?? "").slice(-4000)}\n--- stderr (end) ---\n${String(error.stderr ?? "").slice(-4000)}`
            )
          })
        )
        const rows = stdout.split("\n").filter((line) => /^r\d\s/.test(line))
        expect(rows.map((line) => line.split(/\s+/)[0])).toEqual(["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"])
        for (const line of rows) {
          const [, runner, loaded] = line.split(/\s+/)
          expect(ports.map((p) => `127.0.0.1:${p}`)).toContain(runner)
          expect(loaded).toBe("10000")
        }
        expect(stdout).toContain("the same run id again: the same results, nothing loaded")
        expect(stdout).toContain("runners stopped; cluster schema and dataset dropped")
        const left = yield* Effect.promise(() =>
          query("SELECT nspname FROM pg_namespace WHERE nspname IN ($1, $2)", [
            `pipestate_cluster_${name}`,
            `shop_distributed_${name}`
          ])
        )
        expect(left).toEqual([])
      }),
    300_000
  )
})
