import { BadInputError } from '@brandq/errors';
import { describe, expect, it } from 'vitest';
import { columnIndex, columnLetter, parseA1Range } from './a1-range.js';

describe('parseA1Range', () => {
  it.each([
    ['Brands!A2:C', { sheet: 'Brands', startColumn: 'A', startRow: 2, endColumn: 'C' }],
    ['Brands!A2:C500', { sheet: 'Brands', startColumn: 'A', startRow: 2, endColumn: 'C', endRow: 500 }],
    ["'My Sheet'!B5:B", { sheet: 'My Sheet', startColumn: 'B', startRow: 5, endColumn: 'B' }],
    ["'It''s mine'!A1", { sheet: "It's mine", startColumn: 'A', startRow: 1 }],
    ["'Q1!Q2'!c3:d", { sheet: 'Q1!Q2', startColumn: 'C', startRow: 3, endColumn: 'D' }],
    ['Sheet1!A:C', { sheet: 'Sheet1', startColumn: 'A', startRow: 1, endColumn: 'C' }],
    ['Sheet1!2:10', { sheet: 'Sheet1', startColumn: 'A', startRow: 2, endRow: 10 }],
    ['AA10:AB', { startColumn: 'AA', startRow: 10, endColumn: 'AB' }],
    ['A1', { startColumn: 'A', startRow: 1 }],
    ['Brands', { sheet: 'Brands', startColumn: 'A', startRow: 1 }],
    ["'My Sheet'", { sheet: 'My Sheet', startColumn: 'A', startRow: 1 }],
  ])('parses %s', (range, expected) => {
    expect(parseA1Range(range)).toEqual(expected);
  });

  it.each(['Brands!', 'Brands!:C', 'Brands!A0:C', 'Brands!A1:B2:C3', 'Brands!R1C1', 'Brands!AAAA1'])(
    'rejects %s as a bad input',
    (range) => {
      expect(() => parseA1Range(range)).toThrow(BadInputError);
      expect(() => parseA1Range(range)).toThrow(`Invalid range "${range}": expected A1 notation such as Brands!A2:C`);
    },
  );
});

describe('columnLetter / columnIndex', () => {
  it.each([
    [0, 'A'],
    [25, 'Z'],
    [26, 'AA'],
    [51, 'AZ'],
    [52, 'BA'],
    [701, 'ZZ'],
    [702, 'AAA'],
    [18277, 'ZZZ'],
  ])('%i <-> %s', (index, letter) => {
    expect(columnLetter(index)).toBe(letter);
    expect(columnIndex(letter)).toBe(index);
  });

  it('round-trips every column a sheet can have', () => {
    for (let index = 0; index <= 18277; index += 1) expect(columnIndex(columnLetter(index))).toBe(index);
  });

  it('accepts lower-case letters', () => {
    expect(columnIndex('ab')).toBe(27);
  });

  it('rejects what is not a column', () => {
    expect(() => columnLetter(-1)).toThrow(RangeError);
    expect(() => columnLetter(1.5)).toThrow(RangeError);
    expect(() => columnIndex('')).toThrow(RangeError);
    expect(() => columnIndex('A1')).toThrow(RangeError);
    expect(() => columnIndex('AAAA')).toThrow(RangeError);
  });
});
