/**
 * The member-replacement procedure (issue 15) as a state under `procedure`: not built yet, so a degraded verdict still
 * stops at the assessment (machines/recovery/steps/2-assess.ts) and nothing routes here.
 */
import { recoverySetup } from '../recovery/setup.js';

export const replaceMember = recoverySetup.createStateConfig({
  always: { target: '#recovery.stoppedQuorumIntact' },
});
