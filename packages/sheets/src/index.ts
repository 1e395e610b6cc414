export { SheetsClient } from './sheets-client.js';
export type { SheetsClientOptions, CellWrite } from './sheets-client.js';
export { classifySheetsError } from './classify-sheets-error.js';
export { SheetWriteQueue } from './sheet-write-queue.js';
export { SheetFlusher } from './sheet-flusher.js';
export type { SheetFlusherOptions, SheetFlusherStats, SheetsGate, SheetsPermit, SheetsWriter, FlusherLogger } from './sheet-flusher.js';
