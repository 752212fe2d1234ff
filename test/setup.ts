// Runs before each test file imports Ink. Ink reads `CI` once, at import (is-in-ci is a module constant): with
// CI=true it renders no intermediate frames and ink-testing-library's lastFrame() turns into "\n" after unmount.
// Removing it here makes component tests behave the same on a laptop and in CI. Tests of our own headless
// detection stub CI explicitly with vi.stubEnv.
delete process.env.CI;
delete process.env.CONTINUOUS_INTEGRATION;
// One colour level everywhere, so frames compare the same locally and in CI.
process.env.FORCE_COLOR = '0';
