/**
 * Why each step exists and what it does, in the words the panel shows, keyed by the machine's step names (every
 * procedure's steps: names are unique across them). The words
 * live in the one table of steps (machines/recovery/steps.ts), beside each step's number and talosctl equivalents.
 */
import { ALL_STEPS, type StepName } from '../machines/recovery/steps.js';

export interface StepText {
  readonly title: string;
  readonly why: string;
  readonly whatHappens: string;
  /** what the spinner says is awaited while the step works without a question */
  readonly working: string;
}

export const STEP_TEXT = Object.fromEntries(
  ALL_STEPS.map((s) => [s.name, { title: s.title, why: s.why, whatHappens: s.whatHappens, working: s.working }]),
) as Record<StepName, StepText>;
