import { configDefaults, defineConfig } from "vitest/config"

/**
 * Two tiers. `npm test` runs both projects (the whole suite); `npm run test:fast` runs only "fast":
 * every test file that starts no child process and injects no fault (killed processes, terminated
 * connections). "slow" holds the rest: fault injection, the soak test, the examples run with tsx,
 * the built binary and package (bin.test.ts, PublicFace.test.ts, Package.test.ts).
 */
const SLOW = [
  "test/faults/**/*.test.ts",
  "test/Soak.test.ts",
  "test/examples/**/*.test.ts",
  "test/cli/bin.test.ts",
  "test/PublicFace.test.ts",
  "test/Package.test.ts"
]

export default defineConfig({
  test: {
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "fast", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...SLOW] }
      },
      { extends: true, test: { name: "slow", include: SLOW } }
    ]
  }
})
