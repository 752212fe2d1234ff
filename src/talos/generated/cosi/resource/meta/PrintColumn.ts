// Original file: protos/cosi/meta.proto


export interface PrintColumn {
  'name'?: (string);
  'jsonPath'?: (string);
}

export interface PrintColumn__Output {
  'name': (string);
  'jsonPath': (string);
}
