import { configDefaults, defineConfig } from "vitest/config"

/**
 * Two tiers. `npm test` runs both projects (the whole suite); `npm run test:fast` runs only "fast":
 * every test file that starts no child process and injects no fault (killed processes, terminated
 * connections). "slow" holds the rest: fault injection, the soak test, the examples run with tsx,
 * the built binary and package (bin.test.ts, PublicFace.test.ts, Package.test.ts), the tests that
 * start pipeline processes (ParallelProcesses, SqliteProcesses, ClusterOrchestrator), and the
 * property-based fuzzing (Fuzz.test.ts: thousands of generated cases, half a minute alone).
 * `test:fast` runs its files on both cores (`--maxWorkers=2`: vitest's default leaves one free);
 * `npm test` keeps the default, so the slow tier's timing-sensitive process tests do not compete.
 */
const SLOW = [
  "test/faults/**/*.test.ts",
  "test/Soak.test.ts",
  "test/examples/**/*.test.ts",
  "test/cli/bin.test.ts",
  "test/PublicFace.test.ts",
  "test/Package.test.ts",
  "test/ParallelProcesses.test.ts",
  "test/SqliteProcesses.test.ts",
  "test/ClusterOrchestrator.test.ts",
  "test/Fuzz.test.ts"
]

export default defineConfig({
  test: {
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "fast", isolate: false, include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...SLOW] }
      },
      { extends: true, test: { name: "slow", include: SLOW } }
    ]
  }
})
