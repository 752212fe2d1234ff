// Original file: protos/cosi/meta.proto

export const ResourceDefinitionSpecSensitivity = {
  NON_SENSITIVE: 'NON_SENSITIVE',
  SENSITIVE: 'SENSITIVE',
} as const;

export type ResourceDefinitionSpecSensitivity =
  | 'NON_SENSITIVE'
  | 0
  | 'SENSITIVE'
  | 1

export type ResourceDefinitionSpecSensitivity__Output = typeof ResourceDefinitionSpecSensitivity[keyof typeof ResourceDefinitionSpecSensitivity]
