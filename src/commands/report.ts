import type { CommandRun } from './types.js';
import { UserError } from '../errors.js';

// Placeholder until the issue that builds this command lands; it says so instead of pretending.
const run: CommandRun = async () => {
  throw new UserError('"talos-dr report" is not built yet in this version; "talos-dr --help" lists what is.', 1);
};
export default run;
