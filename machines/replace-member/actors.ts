/**
 * The member replacement's named actors as the machine declares them: each throws until the runtime provides it
 * (src/wizard/replace-member.ts, given to the machine with the recovery's own in src/wizard/actors.ts). Spread into setup.ts.
 */
export const REPLACE_MEMBER_ACTORS = {};
