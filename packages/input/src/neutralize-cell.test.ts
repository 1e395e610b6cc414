import { describe, expect, it } from 'vitest';
import { neutralizeCell } from './neutralize-cell.js';

describe('neutralizeCell', () => {
  it.each([
    ['=HYPERLINK("http://x","y")', `'=HYPERLINK("http://x","y")`],
    ['+1 555 0100', "'+1 555 0100"],
    ['-cmd|calc', "'-cmd|calc"],
    ['@SUM(A1:A2)', "'@SUM(A1:A2)"],
    ['  =1+1', "'  =1+1"], // some apps trim before parsing
    ['\t=1+1', "' =1+1"],
    ['\r=1+1', "'\n=1+1"],
    ['\u0000=1+1', "'=1+1"], // a stripped NUL must not unmask the formula
    ['- bullet', "'- bullet"],
    ['-', "'-"],
    ['-12,5', "'-12,5"], // only dot decimals count as plain numbers; a quote on a comma decimal is harmless
  ])('prefixes a quote to the formula-like %j', (value, expected) => {
    expect(neutralizeCell(value)).toBe(expected);
  });

  it.each(['-12.5', '+3', '-0.5e-3', '.5', '42'])('leaves the plain number %s alone', (value) => {
    expect(neutralizeCell(value)).toBe(value);
  });

  it.each(['Nike', 'a=b', 'email@example.com', "'=already quoted", '', 'مطعم الشام', '👩‍💻 Studio', 'x-y'])(
    'leaves the ordinary text %j alone',
    (value) => {
      expect(neutralizeCell(value)).toBe(value);
    },
  );

  it('strips ASCII control characters but keeps newlines, turning CR LF into LF and tabs into spaces', () => {
    expect(neutralizeCell('a\u0007b\u001bc\u007Fd')).toBe('abcd');
    expect(neutralizeCell('line1\r\nline2\rline3\nline4')).toBe('line1\nline2\nline3\nline4');
    expect(neutralizeCell('a\tb')).toBe('a b');
  });

  it('is idempotent', () => {
    for (const value of ['=1+1', '\t-x', '-12.5', 'plain', '\u0000@x']) {
      expect(neutralizeCell(neutralizeCell(value))).toBe(neutralizeCell(value));
    }
  });
});
