import { createContext, useContext } from 'react';

/**
 * The command a person pastes to run talos-dr again (e.g. `node /abs/dist/src/cli.js` from a clone, `talos-dr` once
 * installed): every follow-up command the screens print starts with it. The entry supplies it.
 */
export const CliName = createContext('talos-dr');

export const useCliName = (): string => useContext(CliName);

export { shellWord } from './shell-word.js';
