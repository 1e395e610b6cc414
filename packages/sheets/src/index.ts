export { SheetsClient } from './sheets-client.js';
export type { SheetsClientOptions, CellWrite } from './sheets-client.js';
export { classifySheetsError } from './classify-sheets-error.js';
