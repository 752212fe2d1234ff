/** Flags every command accepts, before or after the command name, as talosctl does; the client reads them too. */
export interface GlobalFlags {
  talosconfig?: string;
  context?: string;
  endpoints?: string[];
  nodes?: string[];
}
