// Original file: protos/cosi/resource.proto

export const LabelTermOperation = {
  EXISTS: 'EXISTS',
  EQUAL: 'EQUAL',
  NOT_EXISTS: 'NOT_EXISTS',
  IN: 'IN',
  LT: 'LT',
  LTE: 'LTE',
  LT_NUMERIC: 'LT_NUMERIC',
  LTE_NUMERIC: 'LTE_NUMERIC',
} as const;

export type LabelTermOperation =
  | 'EXISTS'
  | 0
  | 'EQUAL'
  | 1
  | 'NOT_EXISTS'
  | 2
  | 'IN'
  | 3
  | 'LT'
  | 4
  | 'LTE'
  | 5
  | 'LT_NUMERIC'
  | 6
  | 'LTE_NUMERIC'
  | 7

export type LabelTermOperation__Output = typeof LabelTermOperation[keyof typeof LabelTermOperation]
