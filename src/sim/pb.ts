/** seconds as a number (exact below 2^53): protobufjs encodes it much faster than a decimal string (ServiceList). */
export const timestamp = (ms: number): { seconds: number; nanos: number } => ({
  seconds: Math.floor(ms / 1000),
  nanos: (ms % 1000) * 1_000_000,
});
