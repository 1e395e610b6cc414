import { describe, expect, it } from 'vitest';
import { A1ParseError, columnIndex, columnLetters, formatA1, parseA1, quoteSheetTitle } from './a1.js';

describe('A1 notation', () => {
  it.each([
    ['Sheet1!A1:C5', { sheet: 'Sheet1', startRow: 0, startCol: 0, endRow: 4, endCol: 2 }],
    ["'My Sheet'!A2:C", { sheet: 'My Sheet', startRow: 1, startCol: 0, endRow: null, endCol: 2 }],
    ["'It''s'!B:B", { sheet: "It's", startRow: null, startCol: 1, endRow: null, endCol: 1 }],
    ['A2:A', { sheet: null, startRow: 1, startCol: 0, endRow: null, endCol: 0 }],
    ['Sheet1!2:5', { sheet: 'Sheet1', startRow: 1, startCol: null, endRow: 4, endCol: null }],
    ['B3', { sheet: null, startRow: 2, startCol: 1, endRow: 2, endCol: 1 }],
    ['Data', { sheet: 'Data', startRow: null, startCol: null, endRow: null, endCol: null }],
    ["'A1'", { sheet: 'A1', startRow: null, startCol: null, endRow: null, endCol: null }],
    ['My Sheet!AA10:AB', { sheet: 'My Sheet', startRow: 9, startCol: 26, endRow: null, endCol: 27 }],
  ])('parses %s', (text, expected) => {
    expect(parseA1(text)).toEqual(expected);
  });

  it.each(['', 'Sheet1!', "'open!A1", 'Sheet1!C1:A1', 'Sheet1!A0', "'bad'quote'!A1", 'Sheet1!A1:B2:C3'])('rejects %j', (text) => {
    expect(() => parseA1(text)).toThrow(A1ParseError);
  });

  it('formats ranges the way Sheets echoes them', () => {
    expect(columnLetters(0)).toBe('A');
    expect(columnLetters(27)).toBe('AB');
    expect(columnIndex('AB')).toBe(27);
    expect(quoteSheetTitle('Sheet1')).toBe('Sheet1');
    expect(quoteSheetTitle('My Sheet')).toBe("'My Sheet'");
    expect(quoteSheetTitle('AB12')).toBe("'AB12'");
    expect(formatA1('Sheet1', 1, 0, 999, 2)).toBe('Sheet1!A2:C1000');
    expect(formatA1('Sheet1', 0, 0, 0, 0)).toBe('Sheet1!A1');
  });
});
