// Original file: protos/cosi/resource.proto


export interface IDQuery {
  'regexp'?: (string);
}

export interface IDQuery__Output {
  'regexp': (string);
}
